"""Video for every task: frames decoded in a background thread, an annotated MP4, per-frame JSON lines, a
live window for webcams and a progress bar with frames/s.

:func:`open_frames` reads a video file, a webcam (``0``, ``"webcam"``, ``"webcam:1"``) or an image
sequence (a folder or a list of image files) in a thread that keeps a few frames ready in a bounded queue,
so decoding overlaps the model. :func:`process_video` runs any per-frame step (a task's prediction and
drawing) over a source and writes what it returns. Webcams go through ``capture_factory`` (OpenCV's
``cv2.VideoCapture`` by default), so a fake capture can stand in for a camera.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import cv2
import numpy as np

from ..errors import DataError
from ..io import atomic_write
from ..media import VIDEO_SUFFIXES, image_files, is_image_file, read_image

__all__ = ["Capture", "FrameSource", "open_frames", "VideoWriter", "JsonLinesWriter", "LiveWindow",
           "display_available", "process_video", "VideoSummary", "webcam_index"]


class Capture(Protocol):
    """What is used of ``cv2.VideoCapture``: a fake camera in tests implements these."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's names
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[Any], Capture]
_END = object()


def webcam_index(source: Any) -> int | None:
    """The device index of a webcam source (``0``, ``"0"``, ``"webcam"``, ``"webcam:N"``), else None."""
    if isinstance(source, bool):
        return None
    if isinstance(source, int):
        return source
    text = str(source)
    if text == "webcam" or text.startswith("webcam:"):
        index = text.partition(":")[2] or "0"
        if not index.isdigit():
            raise DataError(f"webcam source {text!r}: the device index after 'webcam:' must be a number")
        return int(index)
    return int(text) if text.isdigit() and not Path(text).exists() else None


class FrameSource:
    """RGB ``uint8`` frames of one source, decoded ahead in a background thread (at most ``queue_size``
    frames wait). Iterate it once; ``close()`` (or leaving a ``with`` block, or a ``break``) stops the
    thread. ``name`` says what it reads, ``fps`` its frame rate, ``live`` whether it is a camera,
    ``frame_count`` how many frames it holds (None when unknown)."""

    def __init__(self, name: str, read: Callable[[], np.ndarray | None], release: Callable[[], None],
                 fps: float, live: bool, frame_count: int | None, queue_size: int = 8) -> None:
        self.name, self.fps, self.live, self.frame_count = name, fps, live, frame_count
        self._read, self._release = read, release
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, name=f"decode {name}", daemon=True)
        self._started = False

    def _decode(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self._read()
                self._put(_END if frame is None else frame)
                if frame is None:
                    return
        except BaseException as e:  # handed to the reading thread, which raises it
            self._put(e)
        finally:
            self._release()

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError(f"frame source {self.name} can be iterated once")
        self._started = True
        self._thread.start()
        count = 0
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                count += 1
                yield item
        finally:
            self.close()
        if count == 0:
            raise DataError(f"{self.name} has no frames that can be decoded (an empty, truncated or unsupported "
                            "file?)")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        elif not self._started:
            self._release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_frames(source: Any, *, capture_factory: CaptureFactory | None = None, queue_size: int = 8,
                default_fps: float = 25.0) -> FrameSource:
    """The frames of ``source``: a video file, a webcam index (``0``, ``"webcam"``, ``"webcam:N"``), a folder
    of images or a list of image files (played at ``default_fps``). A file or camera that cannot be opened
    raises :class:`~hrnet.errors.DataError` naming it, here rather than at the first frame."""
    if isinstance(source, (list, tuple)):
        return _image_sequence([Path(p) for p in source], "image sequence", queue_size, default_fps)
    index = webcam_index(source)
    if index is not None:
        return _capture_source(index, f"webcam {index}", True, capture_factory, queue_size, default_fps)
    path = Path(source)
    if path.is_dir():
        images = image_files(path)
        if not images:
            raise DataError(f"no images in folder {path} to read as an image sequence")
        return _image_sequence(images, f"image sequence {path}", queue_size, default_fps)
    if not path.is_file():
        raise DataError(f"video not found: {path} (the file does not exist)")
    if is_image_file(path):
        return _image_sequence([path], f"image {path}", queue_size, default_fps)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise DataError(f"{path} is not a video ({', '.join(VIDEO_SUFFIXES)}) nor an image")
    return _capture_source(path, f"video {path}", False, capture_factory, queue_size, default_fps)


def _capture_source(target: Path | int, name: str, live: bool, factory: CaptureFactory | None, queue_size: int,
                    default_fps: float) -> FrameSource:
    capture = (factory or cv2.VideoCapture)(target if isinstance(target, int) else str(target))
    if not capture.isOpened():
        capture.release()
        if live:
            raise DataError(f"cannot open {name}: no camera answers at that index (is one connected, and not in "
                            "use by another program?)")
        raise DataError(f"cannot read {name}: OpenCV cannot decode it (a damaged or unsupported file?)")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    fps = fps if 0.0 < fps < 1000.0 else default_fps
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not live else 0

    def read() -> np.ndarray | None:
        ok, frame = capture.read()
        if not ok or frame is None:
            return None
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    return FrameSource(name, read, capture.release, fps, live, count or None, queue_size)


def _image_sequence(paths: Sequence[Path], name: str, queue_size: int, fps: float) -> FrameSource:
    remaining = iter(paths)

    def read() -> np.ndarray | None:
        path = next(remaining, None)
        return None if path is None else read_image(path)

    return FrameSource(name, read, lambda: None, fps, False, len(paths), queue_size)


class VideoWriter:
    """An MP4 (``mp4v``) written frame by frame at ``fps``: to a hidden temporary name beside ``path``,
    renamed to ``path`` by :meth:`close` once whole; :meth:`abort` (or an error in a ``with`` block)
    removes it instead. The frame size is the first frame's."""

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix or '.mp4'}")
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frame_rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise DataError(f"cannot write video {self.path}: OpenCV has no MP4 encoder here")
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place; None if no frame was written."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        self.abort() if exc_type is not None else self.close()


class JsonLinesWriter:
    """One JSON object per line, one line per frame; the file appears at ``path`` whole, on :meth:`close`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._context = atomic_write(self.path, "w")
        self._file: IO = self._context.__enter__()

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self, error: BaseException | None = None) -> None:
        if self._context is None:
            return
        context, self._context = self._context, None
        if error is None:
            context.__exit__(None, None, None)
        else:
            context.__exit__(type(error), error, error.__traceback__)


def display_available() -> bool:
    """Whether a window can be shown: OpenCV was built with a GUI backend (``opencv-python-headless`` has
    none) and, on Linux, a display server is set (X11 / Wayland). Probed without opening a window, since
    some backends abort the process when the display cannot be reached."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    gui = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return gui is not None and gui.group(1).upper() != "NONE"


class LiveWindow:
    """An OpenCV window showing annotated frames; ``show(frame)`` is False once the user presses q or Esc."""

    def __init__(self, title: str = "hrnet") -> None:
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, frame_rgb: np.ndarray) -> bool:
        cv2.imshow(self.title, cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)


@dataclass
class VideoSummary:
    """What :func:`process_video` did: frames processed, their rate, the files written, whether a window
    was shown."""

    frames: int = 0
    seconds: float = 0.0
    written: list[Path] = field(default_factory=list)
    shown: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


#: ``step(frames) -> [(annotated frame or None, JSON record), ...]``, one pair per frame, in order
FrameStep = Callable[[list[np.ndarray]], list[tuple[np.ndarray | None, dict[str, Any]]]]


def process_video(source: FrameSource, step: FrameStep, *, video_out: str | os.PathLike | None = None,
                  json_out: str | os.PathLike | None = None, show: bool | None = None, frames_per_step: int = 1,
                  max_frames: int | None = None, progress: bool = True,
                  log: Callable[[str], None] = print) -> VideoSummary:
    """Run ``step`` over ``source`` ``frames_per_step`` frames at a time (1 for a live source, for latency)
    and write the annotated frames to ``video_out`` (an MP4 at the source's frame rate) and the records to
    ``json_out`` (JSON lines, ``frame`` = the frame's index added to each). ``show`` opens a live window
    (default: for a webcam when a display exists; without a display a message says so and the files are
    still written). q or Esc in the window ends the run."""
    want_window = source.live if show is None else show
    window = None
    if want_window:
        if display_available():
            window = LiveWindow(source.name)
        else:
            where = ", ".join(str(p) for p in (video_out, json_out) if p) or "nowhere (no output file given)"
            log(f"no display available for the live view of {source.name}: writing to {where} instead")
    writer = VideoWriter(video_out, source.fps) if video_out else None
    lines = JsonLinesWriter(json_out) if json_out else None
    total = source.frame_count if max_frames is None else min(max_frames, source.frame_count or max_frames)
    bar = _progress_bar(total, source.name, progress)
    summary = VideoSummary(shown=window is not None)
    per_step = 1 if source.live else max(1, frames_per_step)
    start = time.perf_counter()
    error: BaseException | None = None
    try:
        pending: list[np.ndarray] = []
        for frame in source:
            pending.append(frame)
            last = max_frames is not None and summary.frames + len(pending) >= max_frames
            if len(pending) < per_step and not last:
                continue
            if not _run_step(step, pending, summary, writer, lines, window, bar):
                break
            pending = []
            if last:
                break
        else:
            if pending:
                _run_step(step, pending, summary, writer, lines, window, bar)
    except BaseException as e:
        error = e
        raise
    finally:
        source.close()
        summary.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
        if window is not None:
            window.close()
        if writer is not None:
            if error is None and (path := writer.close()) is not None:
                summary.written.append(path)
            else:
                writer.abort()
        if lines is not None:
            lines.close(error)
            if error is None:
                summary.written.append(lines.path)
    return summary


def _run_step(step: FrameStep, frames: list[np.ndarray], summary: VideoSummary, writer: VideoWriter | None,
              lines: JsonLinesWriter | None, window: LiveWindow | None, bar: Any) -> bool:
    """One step over ``frames``; False when the user closed the live window."""
    results = step(frames)
    if len(results) != len(frames):
        raise ValueError(f"the per-frame step returned {len(results)} results for {len(frames)} frames")
    keep_going = True
    for drawn, record in results:
        if writer is not None and drawn is not None:
            writer.write(drawn)
        if lines is not None:
            lines.write({"frame": summary.frames, **record})
        if window is not None and drawn is not None:
            keep_going = window.show(drawn) and keep_going
        summary.frames += 1
    if bar is not None:
        bar.update(len(frames))
    return keep_going


def _progress_bar(total: int | None, name: str, enabled: bool) -> Any:
    """A tqdm bar counting frames, with frames/s; None when disabled."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="frame", dynamic_ncols=True, leave=True)
