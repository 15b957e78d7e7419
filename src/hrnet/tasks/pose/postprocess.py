"""Test-time post-processing of the official pose code: flip test, rescoring, OKS-NMS, soft OKS-NMS, and
:class:`PoseDecoder`, the one decode -> rescore -> NMS step that evaluation and prediction share.

Instances are plain dicts, as in the official ``COCODataset.evaluate``: ``keypoints`` ``(K, 3)`` array of
(x, y, confidence) in image pixels, ``score`` (the box score, replaced by the rescored value), ``area``
(``prod(scale * 200)``), ``center``, ``scale`` and ``image_id``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .codecs import HeatmapCodec
from .meta import COCO_META
from .transforms import flip_back

__all__ = [
    "COCO_SIGMAS",
    "flip_test_merge",
    "rescore",
    "oks_iou",
    "oks_nms",
    "soft_oks_nms",
    "rescore_and_nms",
    "make_instances",
    "PoseDecoder",
]

#: the COCO keypoint OKS sigmas (``cocoeval``), the default of :func:`oks_iou`
COCO_SIGMAS = np.array(COCO_META.sigmas)


def flip_test_merge(
    output: torch.Tensor | np.ndarray,
    output_flipped: torch.Tensor | np.ndarray,
    flip_pairs: Sequence[Sequence[int]],
    shift: bool = True,
) -> torch.Tensor | np.ndarray:
    """Official flip test: ``(output + flip_back(output_flipped, shift)) * 0.5``.

    ``output_flipped`` is the network's output for the horizontally mirrored input; ``shift=True`` is the
    official ``SHIFT_HEATMAP`` (move the mirrored-back heatmap right by one pixel).
    """
    return (output + flip_back(output_flipped, flip_pairs, shift=shift)) * 0.5


def rescore(keypoints: np.ndarray, box_score: float | np.ndarray, in_vis_thre: float = 0.2) -> np.ndarray:
    """Official rescoring: ``box_score * mean(confidences > in_vis_thre)`` (0 when no joint passes).

    ``keypoints`` is ``(K, 3)`` or ``(N, K, 3)`` with the confidence in the last column.
    """
    conf = np.asarray(keypoints, dtype=np.float64)[..., 2]
    passed = conf > in_vis_thre
    count = passed.sum(axis=-1)
    total = np.where(passed, conf, 0.0).sum(axis=-1)
    kpt_score = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return kpt_score * np.asarray(box_score, dtype=np.float64)


def oks_iou(
    g: np.ndarray,
    d: np.ndarray,
    a_g: float,
    a_d: np.ndarray,
    sigmas: Sequence[float] | None = None,
    in_vis_thre: float | None = None,
) -> np.ndarray:
    """Official ``oks_iou``: the OKS between one instance ``g`` and each row of ``d``.

    ``g`` is a flat ``(3K,)`` keypoint vector (x, y, v interleaved), ``d`` is ``(M, 3K)``, ``a_g`` and
    ``a_d`` their areas. ``e = d^2 / (2 sigma)^2 / ((a_g + a_d) / 2 + eps) / 2`` and ``OKS = mean(exp(-e))``.
    With ``in_vis_thre`` only keypoints whose confidence in ``d`` exceeds it are averaged (upstream's
    ``list(vg > t) and list(vd > t)`` evaluates to the ``d`` mask); none left gives 0. ``sigmas`` default
    to COCO's.
    """
    sigmas = COCO_SIGMAS if sigmas is None else np.asarray(sigmas, dtype=np.float64)
    variances = (sigmas * 2) ** 2
    g, d = np.asarray(g, dtype=np.float64), np.asarray(d, dtype=np.float64).reshape(-1, len(g))
    a_d = np.asarray(a_d, dtype=np.float64).reshape(-1)
    dx = d[:, 0::3] - g[0::3]
    dy = d[:, 1::3] - g[1::3]
    e = (dx**2 + dy**2) / variances / ((a_g + a_d[:, None]) / 2 + np.spacing(1)) / 2
    if in_vis_thre is None:
        return np.exp(-e).sum(axis=1) / e.shape[1]
    keep = d[:, 2::3] > in_vis_thre
    count = keep.sum(axis=1)
    total = np.where(keep, np.exp(-e), 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _unpack(kpts_db: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.array([inst["score"] for inst in kpts_db])
    kpts = np.array([np.asarray(inst["keypoints"]).flatten() for inst in kpts_db])
    areas = np.array([inst["area"] for inst in kpts_db])
    return scores, kpts, areas


def oks_nms(
    kpts_db: Sequence[dict[str, Any]],
    thresh: float,
    sigmas: Sequence[float] | None = None,
    in_vis_thre: float | None = None,
) -> list[int]:
    """Official ``oks_nms``: greedy NMS by score with OKS as the overlap; returns the kept indices.

    Instances are visited in ``argsort(score)[::-1]`` order; each kept one removes the remaining instances
    whose OKS with it is ``> thresh`` (0.9 in the HRNet configs).
    """
    if len(kpts_db) == 0:
        return []
    scores, kpts, areas = _unpack(kpts_db)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        ovr = oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas, in_vis_thre)
        order = order[np.where(ovr <= thresh)[0] + 1]
    return keep


def soft_oks_nms(
    kpts_db: Sequence[dict[str, Any]],
    thresh: float,
    sigmas: Sequence[float] | None = None,
    in_vis_thre: float | None = None,
    max_dets: int = 20,
) -> np.ndarray:
    """Official ``soft_oks_nms``: Gaussian soft-NMS with OKS overlaps; returns at most ``max_dets`` indices.

    After each pick the remaining scores decay as ``s * exp(-oks^2 / thresh)`` and are re-sorted.
    """
    if len(kpts_db) == 0:
        return np.zeros(0, dtype=np.intp)
    scores, kpts, areas = _unpack(kpts_db)
    order = scores.argsort()[::-1]
    scores = scores[order]
    keep = []
    while order.size > 0 and len(keep) < max_dets:
        i = order[0]
        ovr = oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas, in_vis_thre)
        order = order[1:]
        scores = scores[1:] * np.exp(-(ovr**2) / thresh)
        resort = scores.argsort()[::-1]
        order, scores = order[resort], scores[resort]
        keep.append(i)
    return np.array(keep, dtype=np.intp)


def rescore_and_nms(
    instances: Sequence[dict[str, Any]],
    in_vis_thre: float = 0.2,
    oks_thre: float = 0.9,
    soft: bool = False,
    sigmas: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """The official per-image loop of ``COCODataset.evaluate``: rescore every instance, then (soft) OKS-NMS.

    Instances are grouped by ``image_id`` (first-seen order); each ``score`` becomes
    :func:`rescore` of it. NMS runs with the given ``sigmas`` (COCO's by default, and always COCO's in the
    official code). Returns the kept instances (copies), image by image.
    """
    by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for inst in instances:
        inst = dict(inst)
        inst["score"] = float(rescore(inst["keypoints"], inst["score"], in_vis_thre))
        by_image[inst["image_id"]].append(inst)
    kept: list[dict[str, Any]] = []
    for img_insts in by_image.values():
        keep = soft_oks_nms(img_insts, oks_thre, sigmas) if soft else oks_nms(img_insts, oks_thre, sigmas)
        kept.extend(img_insts if len(keep) == 0 else [img_insts[k] for k in keep])
    return kept


def make_instances(
    preds: np.ndarray,
    maxvals: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    scores: np.ndarray,
    image_ids: Sequence[Any],
    pixel_std: float = 200.0,
) -> list[dict[str, Any]]:
    """Decoded batch -> instance dicts, as the official ``validate`` fills ``all_preds``/``all_boxes``.

    ``keypoints`` = ``[preds, maxvals]`` ``(K, 3)``, ``area = prod(scale * 200)``, ``score`` = box score.
    """
    out = []
    for i, image_id in enumerate(image_ids):
        kpts = np.concatenate([np.asarray(preds[i])[:, :2], np.asarray(maxvals[i]).reshape(-1, 1)], axis=1)
        out.append(
            {
                "image_id": image_id,
                "keypoints": kpts.astype(np.float32),
                "center": np.asarray(centers[i], dtype=np.float64),
                "scale": np.asarray(scales[i], dtype=np.float64),
                "area": float(np.prod(np.asarray(scales[i], dtype=np.float64) * pixel_std)),
                "score": float(scores[i]),
            }
        )
    return out


@dataclass(frozen=True)
class PoseDecoder:
    """The test-time step shared by evaluation and prediction, so both give the same poses for the same
    crops: heatmaps -> keypoints in the image (the codec's decoding) -> instance dicts
    (:func:`make_instances`) -> per image, the official rescoring and OKS-NMS (soft with ``soft_nms``;
    none with ``nms=False``), with the ``eval:`` settings ``in_vis_thre``, ``oks_thre``, ``soft_nms``."""

    codec: HeatmapCodec
    sigmas: Sequence[float] | None = None
    in_vis_thre: float = 0.2
    oks_thre: float = 0.9
    soft_nms: bool = False
    nms: bool = True

    def decode(
        self,
        heatmaps: torch.Tensor | np.ndarray,
        centers: np.ndarray,
        scales: np.ndarray,
        box_scores: Sequence[float],
        image_ids: Sequence[Any],
    ) -> list[dict[str, Any]]:
        """One instance per heatmap stack, its keypoints in image pixels and its box score."""
        preds, maxvals = self.codec.decode(heatmaps, np.asarray(centers), np.asarray(scales))
        return make_instances(preds, maxvals, centers, scales, box_scores, image_ids)

    def select(self, instances: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The instances kept, rescored, image by image (see :func:`rescore_and_nms`)."""
        if self.nms:
            return rescore_and_nms(instances, self.in_vis_thre, self.oks_thre, self.soft_nms, self.sigmas)
        return [{**x, "score": float(rescore(x["keypoints"], x["score"], self.in_vis_thre))} for x in instances]
