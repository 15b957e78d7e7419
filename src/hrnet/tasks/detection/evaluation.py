"""COCO evaluation of detections: model outputs -> COCO results JSON -> pycocotools' 12 numbers per type.

The path is the one the official detection code takes (mmdetection writes ``bbox`` and ``segm``
results to separate files and evaluates each with ``COCOeval``): boxes become ``[x, y, w, h]``,
contiguous labels go back to the file's category ids, and masks are thresholded at 0.5 and stored as
compressed RLE.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch import Tensor

from ...io import write_json
from .data import CategoryMap

__all__ = ["STAT_NAMES", "IOU_TYPES", "detections_to_coco", "evaluate_coco", "write_results"]

logger = logging.getLogger(__name__)

#: the order of ``COCOeval.stats``
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
IOU_TYPES = ("bbox", "segm")


def _mask_rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def detections_to_coco(detections: Iterable[dict[str, Tensor]], image_ids: Iterable[int],
                       categories: CategoryMap, mask_threshold: float = 0.5
                       ) -> dict[str, list[dict[str, Any]]]:
    """COCO results of torchvision detector outputs (``boxes`` XYXY in the image's pixels, ``labels``
    ``1..K``, ``scores`` and optionally ``masks`` (N, 1, H, W) probabilities), one output per image id.

    Returns ``{"bbox": [...]}``, plus ``"segm": [...]`` when the outputs have masks. Labels outside
    ``1..K`` (a one-stage head's background logit) are dropped.
    """
    results: dict[str, list[dict[str, Any]]] = {"bbox": []}
    for output, image_id in zip(detections, image_ids, strict=True):
        labels = output["labels"].tolist()
        scores = output["scores"].tolist()
        boxes = output["boxes"].detach().cpu().double().numpy()
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
        masks = output.get("masks")
        if masks is not None:
            masks = (masks.detach().cpu()[:, 0] > mask_threshold).numpy()
            results.setdefault("segm", [])
        for i, (label, score) in enumerate(zip(labels, scores, strict=True)):
            if not 1 <= label <= len(categories):
                continue
            common = {"image_id": int(image_id), "category_id": categories.cat_id(label),
                      "score": float(score)}
            results["bbox"].append({**common, "bbox": [round(v, 3) for v in xywh[i]]})
            if masks is not None:
                results["segm"].append({**common, "segmentation": _mask_rle(masks[i])})
    return results


def evaluate_coco(coco_gt: COCO, results: Sequence[dict[str, Any]], iou_type: str,
                  image_ids: Sequence[int] | None = None) -> tuple[dict[str, float], str]:
    """pycocotools ``COCOeval`` of ``results`` against ``coco_gt`` on ``image_ids`` (all images when
    ``None``). Returns ``{"<iou_type>_AP": ..., ...}`` with the 12 standard numbers, and pycocotools'
    table of them (its 12 "Average Precision/Recall" lines).
    No detections at all score 0 everywhere (pycocotools cannot load an empty result list)."""
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    if not results:
        logger.warning("no %s detections to evaluate: every %s number is 0", iou_type, iou_type)
        return {f"{iou_type}_{name}": 0.0 for name in STAT_NAMES}, ""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        coco_dt = coco_gt.loadRes(copy.deepcopy(list(results)))
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        if image_ids is not None:
            evaluator.params.imgIds = sorted(set(image_ids))
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = {f"{iou_type}_{name}": float(v) for name, v in zip(STAT_NAMES, evaluator.stats, strict=True)}
    table = "\n".join(line for line in printed.getvalue().splitlines() if line.lstrip().startswith("Average"))
    return stats, table


def write_results(out_dir: str | Path, results: dict[str, list[dict[str, Any]]], prefix: str = "detections"
                  ) -> list[Path]:
    """Write each result list to ``<out_dir>/<prefix>_<iou_type>.json`` (atomically); return the paths."""
    paths = [Path(out_dir) / f"{prefix}_{iou_type}.json" for iou_type in results]
    for path, entries in zip(paths, results.values(), strict=True):
        write_json(path, entries)
    return paths
