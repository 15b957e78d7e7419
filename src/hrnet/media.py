"""Image and video I/O shared by every task: which files are images, one image reader, one image writer,
the expansion of user inputs (files, folders, videos, webcams) and video frames.

Images are ``uint8`` ``(H, W, 3)`` arrays in RGB order (``color="bgr"`` for OpenCV's order), read with
the stored pixel orientation (EXIF orientation ignored), as COCO-style annotations are made on them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from .errors import DataError
from .io import atomic_write

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "is_image_file",
    "image_files",
    "expand_inputs",
    "read_image",
    "image_truncation",
    "write_image",
    "read_frames",
    "video_fps",
    "video_source",
]

#: image file suffixes (compared case-insensitively: ImageNet uses ``.JPEG``)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
#: the ImageNet statistics every HRNet preset normalises its RGB input with (in [0, 1] units)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Color = Literal["rgb", "bgr"]


def is_image_file(name: str | os.PathLike) -> bool:
    return str(name).lower().endswith(IMAGE_SUFFIXES)


def image_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The image files of ``folder`` (of its whole tree with ``recursive``), sorted by path."""
    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and is_image_file(p))


def expand_inputs(
    inputs: Sequence[str | os.PathLike], *, videos: bool = False, recursive: bool = False
) -> tuple[list[Path], list[Path | str]]:
    """User inputs -> (image files, video sources), each in input order; folders give their image files,
    sorted (:func:`image_files`). With ``videos``, video files and ``webcam`` / ``webcam:N`` are accepted
    as video sources; otherwise any other file is taken as an image. A missing input, a folder without
    images or no input at all raises :class:`DataError` naming it."""
    images: list[Path] = []
    sources: list[Path | str] = []
    for item in inputs:
        path = Path(item)
        if videos and str(item).startswith("webcam"):
            sources.append(str(item))
        elif path.is_dir():
            found = image_files(path, recursive)
            if not found:
                raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
            images.extend(found)
        elif not path.exists():
            raise DataError(f"input not found: {path} (it does not exist)")
        elif videos and path.suffix.lower() in VIDEO_SUFFIXES:
            sources.append(path)
        elif videos and not is_image_file(path):
            raise DataError(f"input {str(path)!r} is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video "
                            f"({', '.join(VIDEO_SUFFIXES)})")
        else:
            images.append(path)
    if not images and not sources:
        raise DataError(f"no images given in {[str(p) for p in inputs]}")
    return images, sources


def _check_not_truncated(path: Path, data: np.ndarray) -> None:
    """Raise :class:`DataError` naming ``path`` if ``data`` is a JPEG cut short.

    libjpeg may decode a truncated file anyway, grey below the cut, with only a warning on stderr. A
    complete JPEG has its end-of-image marker (FF D9) after the start of its last scan (FF DA): inside
    the compressed data every FF byte is escaped, so the marker cannot appear there by chance."""
    raw = data.tobytes()
    if raw[:2] == b"\xff\xd8" and raw.rfind(b"\xff\xd9") < raw.rfind(b"\xff\xda"):
        raise DataError(
            f"image {path} is truncated: its JPEG data stops before the end-of-image marker (an interrupted "
            f"download or copy). Fetch the file again, or remove it from the dataset."
        )


def read_image(path: str | os.PathLike, color: Color = "rgb") -> np.ndarray:
    """The ``uint8`` ``(H, W, 3)`` image at ``path`` (grey files expanded to 3 channels); a missing,
    undecodable or truncated file raises :class:`DataError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path} (the file does not exist)")
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    data = np.fromfile(path, dtype=np.uint8)
    _check_not_truncated(path, data)
    bgr = cv2.imdecode(data, flags)
    if bgr is None:
        raise DataError(f"cannot read image {path}: cannot decode image {path.name} (it cannot be decoded by "
                        "OpenCV: not an image file, or truncated)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if color == "rgb" else bgr


def write_image(path: str | os.PathLike, image: np.ndarray, color: Color = "rgb", quality: int = 95) -> Path:
    """Write an image atomically, encoded by the suffix of ``path`` (PNG, JPEG, ...). ``image`` is a
    ``uint8``/``uint16`` grey ``(H, W)`` array or an ``(H, W, 3)`` one in ``color`` order."""
    path = Path(path)
    array = np.ascontiguousarray(image)
    if array.ndim == 3 and color == "rgb":
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(path.suffix or ".png", array, params)
    if not ok:
        raise DataError(f"cannot encode {path} as {path.suffix or 'PNG'}")
    with atomic_write(path, "wb") as f:
        f.write(encoded.tobytes())
    return path


def video_source(source: Path | str) -> Path | int:
    """A video file as it is, ``webcam`` / ``webcam:N`` as OpenCV's device index ``N`` (0 by default)."""
    if isinstance(source, Path):
        return source
    _, _, index = source.partition(":")
    return int(index or 0)


def read_frames(source: str | os.PathLike | int) -> Iterator[np.ndarray]:
    """The RGB frames of a video file or webcam (an int device index), as they are read."""
    capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not capture.isOpened():
        raise DataError(f"cannot open video source {source!r}")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def video_fps(source: str | os.PathLike | int, default: float = 25.0) -> float:
    """The frame rate a video file or webcam reports (``default`` when it reports none)."""
    capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    try:
        return float(capture.get(cv2.CAP_PROP_FPS) or default)
    finally:
        capture.release()


def image_truncation(path: str | os.PathLike) -> str | None:
    """Why the image file at ``path`` is incomplete, or None if it is whole.

    OpenCV decodes a truncated JPEG without an error (libjpeg only prints "Premature end of JPEG file"
    and fills the rest with grey), so JPEG and PNG files are checked for their end markers (EOI,
    IEND); other formats are decoded with Pillow, which refuses truncated files."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(max(0, path.stat().st_size - 1024))
        tail = f.read().rstrip(b"\x00\r\n\t ")
    if head.startswith(b"\xff\xd8"):  # EOI cannot occur inside entropy-coded data; some cameras append a trailer
        return None if b"\xff\xd9" in tail else "the JPEG data ends before its end-of-image marker"
    if head.startswith(b"\x89PNG"):
        return None if b"IEND" in tail[-64:] else "the PNG data ends before its IEND chunk"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
    except UnidentifiedImageError:
        return None  # not an image Pillow knows: the reader reports it
    except OSError as e:
        return f"it cannot be decoded completely ({e})"
    return None
