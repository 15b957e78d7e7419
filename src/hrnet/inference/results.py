"""Typed per-image results of the four tasks, one JSON schema family for all of them, and their drawing.

Every result serialises (``to_json()``) to one record::

    {"image_id": 785, "file": "photos/000785.jpg", "frame": null, "task": "pose", "height": 425, "width": 640,
     ...task fields}

with the task's fields in shared conventions: boxes ``[x1, y1, x2, y2]`` in image pixels with a ``score``;
keypoints ``[[x, y, score], ...]``; masks as COCO run-length encoding (``{"size": [H, W], "counts": str}``,
``pycocotools.mask``); labels as ``{"label": i, "name": str}``:

* pose: ``keypoint_names`` and ``instances`` of ``{"box", "box_score", "keypoints", "score", "track_id"}``
* detection: ``instances`` of ``{"box", "score", "label", "name", "mask"}`` (``mask`` only for mask models)
* segmentation: ``classes`` and ``segments`` of ``{"label", "name", "area", "mask"}``, one per class present
* classification: ``top`` of ``{"label", "name", "score"}``, best first

``draw(image)`` returns a copy of the RGB image with the result drawn by the task's own visualisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ..tasks.classification.visualize import draw_top_k
from ..tasks.detection.inference import draw_detections
from ..tasks.pose.meta import KeypointMeta
from ..tasks.pose.visualize import draw_poses
from ..tasks.segmentation.visualize import overlay

__all__ = ["Result", "PoseResult", "SegmentationResult", "DetectionResult", "ClassificationResult",
           "encode_mask", "decode_mask"]


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """A boolean ``(H, W)`` mask as COCO RLE with a text ``counts`` (JSON-ready)."""
    from pycocotools import mask as coco_mask  # only needed when masks are written

    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """The boolean ``(H, W)`` mask of an :func:`encode_mask` record."""
    from pycocotools import mask as coco_mask

    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)


def _floats(values: Any, digits: int = 2) -> list:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


@dataclass
class Result:
    """What every result says about its image: id, source file (or video), frame index, size."""

    task: ClassVar[str]
    image_id: int | str
    height: int
    width: int
    file: str | None = None
    frame: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "file": self.file, "frame": self.frame, "task": self.task,
                "height": self.height, "width": self.width, **self._fields()}

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def draw(self, image: np.ndarray) -> np.ndarray:
        """A copy of the RGB ``uint8`` ``image`` with this result drawn."""
        raise NotImplementedError


@dataclass
class PoseResult(Result):
    """Persons of one image: ``boxes`` ``(N, 4)`` xyxy, ``box_scores`` ``(N,)``, ``keypoints`` ``(N, K, 3)``
    (x, y, confidence), pose ``scores`` ``(N,)``, and ``track_ids`` ``(N,)`` when tracked across frames."""

    task: ClassVar[str] = "pose"
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    box_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3)))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    track_ids: np.ndarray | None = None
    meta: KeypointMeta | None = field(default=None, repr=False)
    #: keypoints at or below this confidence are not drawn; ``show_scores`` writes each one's confidence
    kpt_thre: float = field(default=0.2, repr=False)
    show_scores: bool = field(default=False, repr=False)

    @classmethod
    def from_instances(cls, instances: Sequence[dict[str, Any]], meta: KeypointMeta, **header: Any) -> PoseResult:
        """From :class:`~hrnet.tasks.pose.inference.TopDownPredictor` instances (xywh ``box``)."""
        k = len(meta.keypoints)
        boxes = np.array([inst["box"] for inst in instances], dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        return cls(boxes=boxes,
                   box_scores=np.array([inst["box_score"] for inst in instances], dtype=np.float64),
                   keypoints=np.array([inst["keypoints"] for inst in instances], dtype=np.float64).reshape(-1, k, 3),
                   scores=np.array([inst["score"] for inst in instances], dtype=np.float64), meta=meta, **header)

    def instances(self) -> list[dict[str, Any]]:
        """The persons as the pose task's instance dicts (xywh ``box``), as its drawing takes them."""
        xywh = self.boxes.copy()
        xywh[:, 2:] -= xywh[:, :2]
        ids = [None] * len(self.boxes) if self.track_ids is None else [int(t) for t in self.track_ids]
        return [{"box": box.tolist(), "box_score": float(bs), "keypoints": kpts, "score": float(s), "track_id": tid}
                for box, bs, kpts, s, tid in zip(xywh, self.box_scores, self.keypoints, self.scores, ids, strict=True)]

    def _fields(self) -> dict[str, Any]:
        return {
            "keypoint_names": list(self.meta.keypoints) if self.meta else None,
            "instances": [{"box": _floats(box), "box_score": round(inst["box_score"], 4),
                           "keypoints": _floats(inst["keypoints"], 3), "score": round(inst["score"], 4),
                           "track_id": inst["track_id"]}
                          for box, inst in zip(self.boxes, self.instances(), strict=True)],
        }

    def draw(self, image: np.ndarray, **options: Any) -> np.ndarray:
        if self.meta is None:
            raise ValueError("this PoseResult has no keypoint meta (skeleton) to draw with")
        options.setdefault("kpt_thre", self.kpt_thre)
        options.setdefault("show_scores", self.show_scores)
        return draw_poses(image, self.instances(), self.meta, **options)


@dataclass
class SegmentationResult(Result):
    """The class id of every pixel, ``labels`` ``(H, W)`` ``uint8``, and the names of the classes."""

    task: ClassVar[str] = "segmentation"
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.uint8))
    class_names: list[str] = field(default_factory=list)
    palette: np.ndarray | None = field(default=None, repr=False)
    ignore_index: int = field(default=255, repr=False)
    alpha: float = field(default=0.5, repr=False)

    def _fields(self) -> dict[str, Any]:
        segments = []
        for label in np.unique(self.labels):
            if label == self.ignore_index:
                continue
            mask = self.labels == label
            name = self.class_names[label] if label < len(self.class_names) else str(label)
            segments.append({"label": int(label), "name": name, "area": int(mask.sum()), "mask": encode_mask(mask)})
        return {"classes": list(self.class_names), "segments": segments}

    def draw(self, image: np.ndarray, alpha: float | None = None) -> np.ndarray:
        if self.palette is None:
            raise ValueError("this SegmentationResult has no palette to draw with")
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        blended = overlay(bgr, self.labels, self.palette, self.alpha if alpha is None else alpha, self.ignore_index,
                          self.class_names or None)
        return np.ascontiguousarray(blended[:, :, ::-1])


@dataclass
class DetectionResult(Result):
    """Objects of one image: ``boxes`` ``(N, 4)`` xyxy, ``labels`` ``(N,)`` (the model's, 1-based),
    ``label_names``, ``scores`` ``(N,)``, and ``masks`` ``(N, H, W)`` booleans for mask models."""

    task: ClassVar[str] = "detection"
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    label_names: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    masks: np.ndarray | None = None

    @classmethod
    def from_output(cls, output: dict[str, torch.Tensor], names: Sequence[str] | None, score_threshold: float,
                    mask_threshold: float = 0.5, **header: Any) -> DetectionResult:
        """From a detector's output (``boxes``, ``labels``, ``scores``, ``masks``), keeping scores >= the
        threshold; ``names[label - 1]`` names a label (else its number)."""
        keep = output["scores"] >= score_threshold
        labels = output["labels"][keep].numpy()
        masks = output["masks"][keep][:, 0].numpy() > mask_threshold if "masks" in output else None
        return cls(boxes=output["boxes"][keep].double().numpy(), labels=labels,
                   label_names=[names[i - 1] if names and 0 < i <= len(names) else str(i) for i in labels.tolist()],
                   scores=output["scores"][keep].double().numpy(), masks=masks, **header)

    def _fields(self) -> dict[str, Any]:
        masks = [None] * len(self.boxes) if self.masks is None else [encode_mask(m) for m in self.masks]
        return {"instances": [
            {"box": _floats(box), "score": round(float(s), 4), "label": int(label), "name": name,
             **({"mask": mask} if mask is not None else {})}
            for box, s, label, name, mask in zip(self.boxes, self.scores, self.labels, self.label_names, masks,
                                                 strict=True)]}

    def draw(self, image: np.ndarray) -> np.ndarray:
        detection = {"boxes": torch.from_numpy(self.boxes).float(), "labels": torch.from_numpy(self.labels),
                     "scores": torch.from_numpy(self.scores).float()}
        if self.masks is not None:
            detection["masks"] = torch.from_numpy(self.masks[:, None].astype(np.float32))
        names = _names_by_label(self.labels, self.label_names)
        canvas = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        drawn = draw_detections(canvas, detection, names, score_threshold=float("-inf"))
        return np.ascontiguousarray(drawn.permute(1, 2, 0).numpy())


def _names_by_label(labels: np.ndarray, names: Sequence[str]) -> list[str]:
    """``names`` laid out as ``draw_detections`` reads them (``names[label - 1]``)."""
    table = [str(i) for i in range(1, int(labels.max(initial=0)) + 1)]
    for label, name in zip(labels.tolist(), names, strict=True):
        table[label - 1] = name
    return table


@dataclass
class ClassificationResult(Result):
    """The ``top`` classes of one image: ``indices`` ``(k,)``, their ``names`` and ``probabilities``."""

    task: ClassVar[str] = "classification"
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    names: list[str] = field(default_factory=list)
    probabilities: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def _fields(self) -> dict[str, Any]:
        return {"top": [{"label": int(i), "name": name, "score": round(float(p), 6)}
                        for i, name, p in zip(self.indices, self.names, self.probabilities, strict=True)]}

    def draw(self, image: np.ndarray) -> np.ndarray:
        return draw_top_k(image, self.names, self.probabilities.tolist())
