"""Keypoint metrics: COCO results JSON + pycocotools OKS AP/AR, and MPII PCKh.

* :func:`coco_keypoint_results` turns post-processed instances into COCO result records (official
  ``_coco_keypoint_results_one_category_kernel``); :func:`write_results` writes them atomically.
* :func:`evaluate_coco_keypoints` runs ``COCOeval(..., 'keypoints')`` and returns the ten standard numbers
  (AP, AP50, AP75, AP_M, AP_L, AR, AR50, AR75, AR_M, AR_L), printing pycocotools' summary.
* :func:`mpii_pckh` is the official MPII PCKh (``MPIIDataset.evaluate``) on arrays; head boxes come
  from the official ``gt_valid.mat`` (:func:`load_mpii_gt_mat`) or, when absent, from a documented
  fallback (:func:`head_sizes_from_joints`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ...errors import DataError
from ...io import write_json

__all__ = [
    "COCO_STAT_NAMES",
    "coco_keypoint_results",
    "write_results",
    "evaluate_coco_keypoints",
    "format_coco_stats",
    "MPII_SC_BIAS",
    "mpii_pckh",
    "head_sizes_from_joints",
    "load_mpii_gt_mat",
]

logger = logging.getLogger(__name__)

#: names of ``COCOeval.stats`` for keypoints, in order
COCO_STAT_NAMES = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")


def coco_keypoint_results(instances: Sequence[dict[str, Any]], category_id: int = 1) -> list[dict[str, Any]]:
    """COCO keypoint result records: ``image_id``, ``category_id``, flat ``keypoints`` (x, y, confidence per
    joint), ``score``, plus the ``center`` and ``scale`` the official code writes alongside."""
    results = []
    for inst in instances:
        kpts = np.asarray(inst["keypoints"], dtype=np.float64).reshape(-1, 3)
        results.append(
            {
                "image_id": inst["image_id"],
                "category_id": category_id,
                "keypoints": [float(v) for v in kpts.reshape(-1)],
                "score": float(inst["score"]),
                "center": [float(v) for v in np.asarray(inst["center"]).reshape(-1)],
                "scale": [float(v) for v in np.asarray(inst["scale"]).reshape(-1)],
            }
        )
    return results


def write_results(path: str | os.PathLike, results: list[dict[str, Any]]) -> Path:
    """Write COCO result records as JSON, atomically (a reader never sees a half-written file)."""
    write_json(path, results)
    return Path(path)


def format_coco_stats(stats: dict[str, float]) -> str:
    """A one-table summary of the ten keypoint numbers (markdown, like the official log line)."""
    names = " | ".join(stats)
    values = " | ".join(f"{v:.3f}" for v in stats.values())
    return f"| {names} |\n|{'---|' * len(stats)}\n| {values} |"


def evaluate_coco_keypoints(
    coco_gt: COCO | str | os.PathLike,
    results: list[dict[str, Any]] | str | os.PathLike,
    sigmas: Sequence[float] | None = None,
    verbose: bool = True,
) -> dict[str, float]:
    """pycocotools keypoint evaluation (``iouType='keypoints'``, ``useSegm=None`` as upstream).

    ``coco_gt`` is a ``COCO`` object or an annotation file; ``results`` a list of result records or a results
    JSON file. ``sigmas`` sets ``params.kpt_oks_sigmas`` (needed for non-COCO keypoint sets). Results for no
    instance at all give all-zero metrics instead of a pycocotools crash. With ``verbose`` pycocotools'
    ten-line summary is printed.
    """
    gt = coco_gt if isinstance(coco_gt, COCO) else _load_coco(coco_gt)
    if not isinstance(results, list):
        results = json.loads(Path(results).read_text())
    if not results:
        logger.warning("no keypoint results to evaluate: all metrics are 0")
        return dict.fromkeys(COCO_STAT_NAMES, 0.0)
    known = set(gt.getImgIds())
    unknown = sorted({r["image_id"] for r in results} - known)
    if unknown:
        raise DataError(f"keypoint results refer to image ids not in the ground truth: {unknown[:10]}")
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
    coco_eval = COCOeval(gt, dt, "keypoints")
    coco_eval.params.useSegm = None
    if sigmas is not None:
        coco_eval.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    if verbose:
        print("\n".join(line for line in out.getvalue().splitlines() if line.lstrip().startswith("Average")))
    return {name: float(v) for name, v in zip(COCO_STAT_NAMES, coco_eval.stats, strict=True)}


def _load_coco(path: str | os.PathLike) -> COCO:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"COCO annotation file {str(path)!r} does not exist")
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


# ------------------------------------------------------------------------------------------------ MPII

#: the official head-size factor of PCKh: the threshold is ``thr * 0.6 * ||head box diagonal||``
MPII_SC_BIAS = 0.6
_MPII_GROUPS = (
    ("Head", (9,)),
    ("Shoulder", (13, 12)),
    ("Elbow", (14, 11)),
    ("Wrist", (15, 10)),
    ("Hip", (3, 2)),
    ("Knee", (4, 1)),
    ("Ankle", (5, 0)),
)


def mpii_pckh(
    preds: np.ndarray, gt: np.ndarray, visible: np.ndarray, head_sizes: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Official MPII PCKh (``MPIIDataset.evaluate``) on arrays, in percent.

    ``preds``/``gt`` are ``(N, 16, 2)`` in the same pixel convention, ``visible`` ``(N, 16)`` (1 = labelled),
    ``head_sizes`` ``(N,)`` the head-box diagonals (:data:`MPII_SC_BIAS` is applied here). Returns per-group
    PCKh@``threshold`` (Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle), ``Mean`` (weighted by joint counts,
    pelvis and thorax excluded), ``Mean@0.1`` exactly as the official code computes it (its threshold table
    ``arange(0, 0.51, 0.01)`` is read at index 11, i.e. **0.11**), and ``PCKh@0.1`` at exactly 0.1.
    """
    preds, gt = np.asarray(preds, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    vis = np.asarray(visible, dtype=np.float64).T  # (16, N) as upstream
    if preds.shape != gt.shape or preds.shape[1:] != (16, 2):
        raise ValueError(f"mpii_pckh expects (N, 16, 2) predictions and ground truth; got {preds.shape}, {gt.shape}")
    uv_err = np.linalg.norm(np.transpose(preds - gt, (1, 2, 0)), axis=1)  # (16, N)
    scale = np.asarray(head_sizes, dtype=np.float64) * MPII_SC_BIAS * np.ones((len(uv_err), 1))
    scaled = uv_err / scale * vis
    jnt_count = vis.sum(axis=1)

    def pck_at(thr: float) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100.0 * ((scaled <= thr) * vis).sum(axis=1) / jnt_count

    pckh = np.ma.array(pck_at(threshold), mask=False)
    pckh.mask[6:8] = True
    count = np.ma.array(jnt_count, mask=False)
    count.mask[6:8] = True
    ratio = count / np.sum(count).astype(np.float64)
    out = {name: float(np.mean([pckh[j] for j in joints])) for name, joints in _MPII_GROUPS}
    out["Mean"] = float(np.sum(pckh * ratio))
    out["Mean@0.1"] = float(np.sum(pck_at(np.arange(0, 0.5 + 0.01, 0.01)[11]) * ratio))
    out["PCKh@0.1"] = float(np.sum(pck_at(0.1) * ratio))
    return out


def head_sizes_from_joints(joints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Fallback head sizes when no ``gt_valid.mat`` head boxes are given (not the official protocol).

    MPII head boxes are squares spanning the head, whose side is close to the upper-neck (8) to head-top (9)
    distance ``L``; the box diagonal is then ``sqrt(2) * L``. People without both joints labelled get
    ``nan`` and must be left out by the caller.
    """
    joints = np.asarray(joints, dtype=np.float64)
    vis = np.asarray(visible) > 0
    length = np.linalg.norm(joints[:, 9] - joints[:, 8], axis=-1) * np.sqrt(2.0)
    return np.where(vis[:, 8] & vis[:, 9] & (length > 0), length, np.nan)


def load_mpii_gt_mat(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the official ``gt_valid.mat``: ``gt`` ``(N, 16, 2)`` (1-based pixels), ``visible`` ``(N, 16)``,
    ``head_sizes`` ``(N,)`` (head-box diagonals)."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DataError(f"MPII ground-truth file {str(path)!r} does not exist")
    try:
        mat = loadmat(str(path))
        pos_gt = mat["pos_gt_src"]  # (16, 2, N)
        missing = mat["jnt_missing"]  # (16, N)
        boxes = mat["headboxes_src"]  # (2, 2, N)
    except (KeyError, ValueError, OSError) as e:
        raise DataError(f"{str(path)!r} is not an MPII gt_valid.mat file: {e}") from e
    return {
        "gt": np.transpose(pos_gt, (2, 0, 1)).astype(np.float64),
        "visible": (1 - missing).T.astype(np.float64),
        "head_sizes": np.linalg.norm(boxes[1] - boxes[0], axis=0).astype(np.float64),
    }
