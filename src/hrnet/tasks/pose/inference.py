"""Top-down inference for users: person boxes -> batched crops -> heatmaps -> keypoints in the image.

:class:`TopDownPredictor` runs a pose model on any number of images at once; every person box of every
image goes into the same batches. Boxes come from the caller (e.g. :func:`load_boxes` on a detection
results JSON, or a detector callable), or default to the whole image. The test-time recipe is the one of
evaluation (the same :class:`~hrnet.tasks.pose.postprocess.PoseDecoder`): flip test, codec decoding,
rescoring and (soft) OKS-NMS. :func:`predict_video` does the same frame by
frame for a video file or a webcam and writes an MP4 with the poses drawn.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from ...errors import DataError
from ...io import read_structured
from ...media import read_frames, read_image, video_fps
from .codecs import HeatmapCodec
from .meta import KeypointMeta
from .postprocess import PoseDecoder, flip_test_merge
from .transforms import to_input_tensor
from .visualize import draw_poses

__all__ = [
    "Detector",
    "infer_heatmaps",
    "TopDownPredictor",
    "load_boxes",
    "boxes_for_image",
    "detected_box_records",
    "predict_video",
]

#: ``image (H, W, 3) RGB -> (boxes (N, 4) xywh, scores (N,))``: any person detector
Detector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@torch.no_grad()
def infer_heatmaps(
    model: nn.Module, images: Tensor, flip_pairs: Sequence[Sequence[int]], flip_test: bool = True, shift: bool = True
) -> Tensor:
    """The model's heatmaps for a batch of normalised crops; with ``flip_test`` averaged with the mirrored
    input's (:func:`~hrnet.tasks.pose.postprocess.flip_test_merge`, ``shift`` = one-pixel shift)."""
    output = model(images)
    output = output[-1] if isinstance(output, (list, tuple)) else output
    if flip_test:
        flipped = model(images.flip(3))
        flipped = flipped[-1] if isinstance(flipped, (list, tuple)) else flipped
        output = flip_test_merge(output, flipped, flip_pairs, shift=shift)
    return output.float()


class TopDownPredictor:
    """Batched top-down pose inference with a trained model and its codec.

    ``predictor(images, boxes)`` takes RGB uint8 images and, per image, an ``(N, 4)`` array of xywh person
    boxes (``None``: the whole image) with optional scores, and returns per image a list of instances:
    ``keypoints`` ``(K, 3)`` (x, y, confidence in image pixels), ``box``, ``box_score`` and ``score``.
    Decoding, rescoring and (soft, with ``soft_nms``) OKS-NMS per image (skipped with ``nms=False``) are
    evaluation's own :class:`~hrnet.tasks.pose.postprocess.PoseDecoder`, so both give the same poses.
    """

    def __init__(
        self,
        model: nn.Module,
        codec: HeatmapCodec,
        meta: KeypointMeta,
        *,
        flip_test: bool = True,
        flip_shift: bool | None = None,
        batch_size: int = 32,
        in_vis_thre: float = 0.2,
        oks_thre: float = 0.9,
        soft_nms: bool = False,
        nms: bool = True,
        padding: float = 1.25,
    ) -> None:
        self.model = model.eval()
        self.codec = codec
        self.meta = meta
        self.flip_test = flip_test
        self.flip_shift = codec.flip_shift if flip_shift is None else flip_shift
        self.batch_size = batch_size
        self.decoder = PoseDecoder(codec, meta.sigmas, in_vis_thre, oks_thre, soft_nms, nms)
        self.padding = padding
        #: ``stage(name)`` -> a context manager around each stage ("crop", "pose", "decode"): a timing hook
        self.stage: Callable[[str], AbstractContextManager] = _untimed

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __call__(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray | None] | None = None,
        scores: Sequence[np.ndarray | None] | None = None,
    ) -> list[list[dict[str, Any]]]:
        boxes = list(boxes) if boxes is not None else [None] * len(images)
        scores = list(scores) if scores is not None else [None] * len(images)
        if not (len(boxes) == len(scores) == len(images)):
            raise ValueError(f"got {len(images)} images, {len(boxes)} box lists and {len(scores)} score lists")
        jobs = []  # (image index, box, box score)
        for i, image in enumerate(images):
            b = _whole_image_box(image) if boxes[i] is None else np.asarray(boxes[i], dtype=np.float64).reshape(-1, 4)
            s = np.ones(len(b)) if scores[i] is None else np.asarray(scores[i], dtype=np.float64).reshape(-1)
            if len(s) != len(b):
                raise ValueError(f"image {i}: {len(b)} boxes but {len(s)} scores")
            jobs.extend((i, box, float(score)) for box, score in zip(b, s, strict=True))
        instances = []
        for start in range(0, len(jobs), self.batch_size):
            instances.extend(self._instances(images, jobs[start : start + self.batch_size]))
        results: list[list[dict[str, Any]]] = [[] for _ in images]
        with self.stage("decode"):
            kept = self.decoder.select(instances)
        for inst in kept:
            results[inst["image_id"]].append(inst)
        return results

    def _instances(self, images: Sequence[np.ndarray], chunk: list[tuple[int, np.ndarray, float]]) -> list[dict]:
        centers, scales, crops = [], [], []
        with self.stage("crop"):
            for i, box, _ in chunk:
                c, s = self.codec.box_to_center_scale(box, self.padding)
                centers.append(c)
                scales.append(s)
                crops.append(to_input_tensor(self.codec.warp(images[i], c, s)))
            batch = torch.stack(crops).to(self.device)
        with self.stage("pose"):
            heatmaps = infer_heatmaps(self.model, batch, self.meta.flip_pairs, self.flip_test, self.flip_shift)
        with self.stage("decode"):
            instances = self.decoder.decode(heatmaps, np.stack(centers), np.stack(scales),
                                            [s for _, _, s in chunk], [i for i, _, _ in chunk])
        for inst, (_, box, score) in zip(instances, chunk, strict=True):
            inst.update(box=[float(v) for v in box], box_score=score)
        return instances


def _untimed(stage: str) -> AbstractContextManager:
    return nullcontext()


def _whole_image_box(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return np.array([[0.0, 0.0, float(w), float(h)]])


def load_boxes(path: str | os.PathLike, category_id: int = 1) -> dict[str, list[tuple[list[float], float]]]:
    """Person boxes from a JSON list of ``{"image" | "file_name" | "image_id": ..., "bbox": [x, y, w, h],
    "score": s}`` (a COCO detection results file works as is; boxes of a ``category_id`` other than
    ``category_id``, the keypoint dataset's, are skipped).

    Returns ``{key: [(bbox, score), ...]}`` keyed by the given file name or ``str(image_id)``; see
    :func:`boxes_for_image`.
    """
    path = Path(path)
    entries = read_structured(path, "box file", DataError)
    if not isinstance(entries, list):
        raise DataError(f"box file {str(path)!r} must hold a JSON list of boxes")
    boxes: dict[str, list[tuple[list[float], float]]] = {}
    for i, e in enumerate(entries):
        key = e.get("image", e.get("file_name", e.get("image_id"))) if isinstance(e, dict) else None
        bbox = e.get("bbox") if isinstance(e, dict) else None
        if key is None or bbox is None or len(bbox) != 4:
            raise DataError(f"box file {str(path)!r}: entry {i} needs 'image' (or 'image_id') and a 4-value 'bbox'")
        if e.get("category_id", category_id) != category_id:
            continue
        boxes.setdefault(str(key), []).append(([float(v) for v in bbox], float(e.get("score", 1.0))))
    return boxes


def boxes_for_image(
    boxes: dict[str, list[tuple[list[float], float]]], image_path: Path
) -> tuple[np.ndarray, np.ndarray] | None:
    """The boxes of ``image_path`` in a :func:`load_boxes` table, gathered from the entries keyed by its file
    name, its stem or the numeric COCO id of the stem (``000000000785.jpg`` -> ``785``); ``None`` when the
    image has no entry."""
    keys = dict.fromkeys([image_path.name, image_path.stem])
    if image_path.stem.isdigit():
        keys[str(int(image_path.stem))] = None
    entries = [entry for key in keys for entry in boxes.get(key, [])]
    if not entries:
        return None
    return (
        np.array([b for b, _ in entries], dtype=np.float64).reshape(-1, 4),
        np.array([s for _, s in entries], dtype=np.float64),
    )


def detected_box_records(detector: Detector, image_paths: Sequence[str | os.PathLike],
                         category_id: int = 1) -> list[dict[str, Any]]:
    """The persons ``detector`` finds in each image as :func:`load_boxes` entries (``image`` = file name,
    ``bbox`` xywh, ``score``, ``category_id``: a COCO detection results file), so that a detector's boxes
    can be saved, inspected and fed to pose prediction like any box file. File names must be unique."""
    paths = [Path(p) for p in image_paths]
    names = [p.name for p in paths]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"images {repeated} appear more than once by file name; person boxes are keyed by it")
    records = []
    for path in paths:
        boxes, scores = detector(read_image(path))
        records.extend(
            {"image": path.name, "bbox": [float(v) for v in box], "score": float(score),
             "category_id": category_id}
            for box, score in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(-1), strict=True)
        )
    return records


def predict_video(
    predictor: TopDownPredictor,
    source: str | os.PathLike | int,
    out_path: str | os.PathLike,
    detector: Detector | None = None,
    max_frames: int | None = None,
    fps: float | None = None,
    kpt_thre: float = 0.2,
) -> list[list[dict[str, Any]]]:
    """Pose of every frame of a video file or webcam (an int device index) with the poses drawn into an MP4
    at ``out_path``; persons come from ``detector`` or the whole frame. Returns the per-frame instances."""
    fps = video_fps(source) if fps is None else fps
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.stem}.tmp{out_path.suffix}")
    writer = None
    per_frame: list[list[dict[str, Any]]] = []
    try:
        for n, frame in enumerate(read_frames(source)):
            if max_frames is not None and n >= max_frames:
                break
            boxes, scores = detector(frame) if detector is not None else (None, None)
            instances = predictor([frame], [boxes], [scores])[0]
            per_frame.append(instances)
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
            writer.write(cv2.cvtColor(draw_poses(frame, instances, predictor.meta, kpt_thre), cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise DataError(f"video source {source!r} has no frames")
    os.replace(tmp, out_path)
    return per_frame
