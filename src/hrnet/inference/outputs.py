"""Writing an :class:`~hrnet.inference.Inferencer`'s results to files, named the same way for every task.

In the output folder, for a task ``<task>`` (pose, segmentation, detection, classification):

* ``<stem>_<task>.png``: each image with its result drawn (``overlays=False``: none);
  segmentation also writes ``<stem>_label.png``, the class id of every pixel
* ``predictions.json``: a JSON list of the images' result records (:mod:`hrnet.inference.results`)
* ``<stem>_<task>.mp4``: each video (or ``webcam<N>_<task>.mp4``) with its results drawn, at its frame rate
* ``<stem>_<task>.jsonl``: one result record per line and frame of that video
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import DataError
from ..io import atomic_write, write_json
from ..media import expand_inputs, read_image, video_fps, write_image
from .inferencer import Inferencer
from .results import Result, SegmentationResult
from .video import webcam_index

__all__ = ["write_predictions", "output_stem"]


def output_stem(source: str | os.PathLike | int) -> str:
    """The stem output files of an input are named after: a file's stem, ``webcam<N>`` for a webcam."""
    index = webcam_index(source)
    name = f"webcam{index}" if index is not None else Path(source).stem
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_predictions(inferencer: Inferencer, inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                      overlays: bool = True, max_frames: int | None = None,
                      on_result: Callable[[Result], None] | None = None) -> list[Path]:
    """Run ``inferencer`` on ``inputs`` (images, folders, videos, webcams) and write its outputs to
    ``out_dir`` (see the module docstring); ``on_result`` sees each result as it comes (e.g. to print it).
    Returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = inferencer.task.name
    images, videos = expand_inputs(inputs, videos=True, recursive=task == "classification")
    written: list[Path] = []
    records: list[dict[str, Any]] = []
    for start in range(0, len(images), 8):
        chunk = images[start:start + 8]
        arrays = [read_image(f) for f in chunk]
        for file, array, result in zip(chunk, arrays, inferencer.predict_images(arrays, chunk), strict=True):
            records.append(result.to_json())
            if on_result is not None:
                on_result(result)
            written.extend(_image_outputs(out_dir / output_stem(file), task, array, result, overlays))
    if images:
        write_json(out_dir / "predictions.json", records, indent=1)
        written.insert(0, out_dir / "predictions.json")
    for source in videos:
        written.extend(_write_video(inferencer, source, out_dir / f"{output_stem(source)}_{task}", overlays,
                                    max_frames, on_result))
    return written


def _image_outputs(stem: Path, task: str, image: np.ndarray, result: Result, overlays: bool) -> list[Path]:
    files = []
    if isinstance(result, SegmentationResult):
        files.append(write_image(stem.with_name(f"{stem.name}_label.png"), result.labels))
    if overlays:
        files.append(write_image(stem.with_name(f"{stem.name}_{task}.png"), result.draw(image)))
    return files


def _write_video(inferencer: Inferencer, source: Path | str, stem: Path, overlays: bool, max_frames: int | None,
                 on_result: Callable[[Result], None] | None) -> list[Path]:
    """``<stem>.jsonl`` (one record per frame) and ``<stem>.mp4`` (frames drawn), each written whole or not
    at all. Frames are drawn as they are predicted."""
    index = webcam_index(source)
    fps = video_fps(index if index is not None else source)
    video, lines = stem.with_suffix(".mp4"), stem.with_suffix(".jsonl")
    tmp_video = video.with_name(f".{video.stem}.tmp.mp4")
    writer = None
    try:
        with atomic_write(lines, "w") as out:
            for frame, result in inferencer.video(source, max_frames):
                out.write(json.dumps(result.to_json()) + "\n")
                if on_result is not None:
                    on_result(result)
                if overlays:
                    if writer is None:
                        height, width = frame.shape[:2]
                        writer = cv2.VideoWriter(str(tmp_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                        if not writer.isOpened():
                            raise DataError(f"cannot write video {video} (OpenCV has no MP4 encoder here)")
                    writer.write(cv2.cvtColor(result.draw(frame), cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        return [lines]
    os.replace(tmp_video, video)
    return [lines, video]
