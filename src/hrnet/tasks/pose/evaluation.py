"""Keypoint metrics (COCO OKS AP/AR, MPII PCKh, the training accuracy) and :class:`PoseEvaluator`.

* :func:`accuracy` is the official training metric (``lib/core/evaluate.py``): PCK@0.5 of the heatmap
  maxima against the target's, per joint, averaged over the joints that have a target, and their count.

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
from torch import Tensor

from ...engine.distributed import all_gather_object, is_main_process
from ...errors import DataError
from ...io import write_json
from .codecs import get_max_preds
from .postprocess import PoseDecoder

__all__ = [
    "accuracy",
    "PoseEvaluator",
    "GT_BOX_WARNING",
    "COCO_STAT_NAMES",
    "coco_keypoint_results",
    "write_results",
    "evaluate_coco_keypoints",
    "CROWDPOSE_STAT_NAMES",
    "crowd_index_split",
    "evaluate_crowdpose_keypoints",
    "format_coco_stats",
    "MPII_SC_BIAS",
    "mpii_pckh",
    "head_sizes_from_joints",
    "load_mpii_gt_mat",
]

logger = logging.getLogger(__name__)

#: logged whenever keypoints are evaluated on ground-truth person boxes
GT_BOX_WARNING = (
    "EVALUATING ON GROUND-TRUTH PERSON BOXES: keypoint AP is higher than with detected boxes (the paper's "
    "protocol, e.g. 76.5 instead of 74.4 for W32 256x192); do not compare it with published numbers."
)

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
    keep: bool = False,
) -> dict[str, Any]:
    """pycocotools keypoint evaluation (``iouType='keypoints'``, ``useSegm=None`` as upstream).

    ``coco_gt`` is a ``COCO`` object or an annotation file; ``results`` a list of result records or a results
    JSON file. ``sigmas`` sets ``params.kpt_oks_sigmas`` (needed for non-COCO keypoint sets). Results for no
    instance at all give all-zero metrics instead of a pycocotools crash. With ``verbose`` pycocotools'
    ten-line summary is printed. ``keep`` adds the ``COCOeval`` object under ``_eval`` (None without results).
    """
    gt = coco_gt if isinstance(coco_gt, COCO) else _load_coco(coco_gt)
    if not isinstance(results, list):
        results = json.loads(Path(results).read_text())
    if not results:
        logger.warning("no keypoint results to evaluate: all metrics are 0")
        return {**dict.fromkeys(COCO_STAT_NAMES, 0.0), **({"_eval": None} if keep else {})}
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
    stats: dict[str, Any] = {name: float(v) for name, v in zip(COCO_STAT_NAMES, coco_eval.stats, strict=True)}
    return {**stats, "_eval": coco_eval} if keep else stats


#: names of the CrowdPose numbers, in the order of its evaluation's summary
CROWDPOSE_STAT_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")
#: crowd-index bounds of CrowdPose's easy (< 0.2), medium (< 0.8) and hard splits, as its evaluation code
CROWD_INDEX_BOUNDS = (0.2, 0.8)


def crowd_index_split(images: Sequence[dict[str, Any]], bounds: tuple[float, float] = CROWD_INDEX_BOUNDS
                      ) -> tuple[list[int], list[int], list[int]]:
    """Image ids of the easy, medium and hard splits by each image entry's ``crowdIndex``."""
    split: tuple[list[int], list[int], list[int]] = ([], [], [])
    for img in images:
        if "crowdIndex" not in img:
            raise DataError(f"image {img.get('id')} has no 'crowdIndex': not a CrowdPose annotation file")
        split[0 if img["crowdIndex"] < bounds[0] else 1 if img["crowdIndex"] < bounds[1] else 2].append(img["id"])
    return split


def evaluate_crowdpose_keypoints(
    coco_gt: COCO | str | os.PathLike,
    results: list[dict[str, Any]] | str | os.PathLike,
    sigmas: Sequence[float],
    verbose: bool = True,
) -> dict[str, float]:
    """CrowdPose keypoint evaluation: :data:`CROWDPOSE_STAT_NAMES` (AP and AR at OKS 0.5:0.95, 0.5, 0.75 with
    20 detections per image, then AP on the easy, medium and hard images of :func:`crowd_index_split`).

    As CrowdPose's evaluation, a ground truth without ``area`` counts 0.53 of its box as its area, and a
    split's AP is the mean precision over all OKS thresholds and recall points.
    """
    gt = coco_gt if isinstance(coco_gt, COCO) else _load_coco(coco_gt)
    for ann in gt.dataset["annotations"]:
        if "area" not in ann:
            ann["area"] = float(ann["bbox"][2] * ann["bbox"][3] * 0.53)
    stats = evaluate_coco_keypoints(gt, results, sigmas, verbose=False, keep=True)
    coco_eval = stats.pop("_eval")
    if coco_eval is None:
        return dict.fromkeys(CROWDPOSE_STAT_NAMES, 0.0)
    out = {name: stats[name] for name in ("AP", "AP50", "AP75", "AR", "AR50", "AR75")}
    for name, ids in zip(("AP_easy", "AP_medium", "AP_hard"), crowd_index_split(gt.dataset["images"]), strict=True):
        coco_eval.params.imgIds = ids
        with contextlib.redirect_stdout(io.StringIO()):
            coco_eval.evaluate()
            coco_eval.accumulate()
        precision = coco_eval.eval["precision"][:, :, :, 0, -1]
        valid = precision[precision > -1]
        out[name] = float(valid.mean()) if ids and valid.size else -1.0
    if verbose:
        print(format_coco_stats(out))
    return out


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


# ------------------------------------------------------------------------------------------- training


def accuracy(output: np.ndarray | Tensor, target: np.ndarray | Tensor, thr: float = 0.5
             ) -> tuple[np.ndarray, float, int, np.ndarray]:
    """The official training accuracy (``lib/core/evaluate.py``, ``hm_type='gaussian'``).

    The maxima of predicted and target heatmaps ``(N, K, h, w)`` are compared after dividing both by
    ``(h / 10, w / 10)`` -- x by h/10 and y by w/10, as upstream does. A joint counts where its target
    maximum lies at x > 1 and y > 1 (others, e.g. empty targets, are ignored); its accuracy is the share of
    counted samples within ``thr``. Returns ``(acc, avg_acc, cnt, pred)``: ``acc[0]`` the average over the
    ``cnt`` joints with a counted sample (0 when none), ``acc[1:]`` per joint (-1 for a joint never
    counted), and the predicted maxima ``(N, K, 2)`` in heatmap pixels.
    """
    pred, _ = get_max_preds(output)
    truth, _ = get_max_preds(target)
    h, w = output.shape[2:]
    norm = np.array([h, w], dtype=np.float64) / 10
    pred32, truth32 = pred.astype(np.float32), truth.astype(np.float32)
    dists = np.linalg.norm(pred32 / norm - truth32 / norm, axis=-1).T  # (K, N)
    counted = ((truth32[..., 0] > 1) & (truth32[..., 1] > 1)).T
    per_joint = np.full(dists.shape[0], -1.0)
    has = counted.any(axis=1)
    per_joint[has] = [(d[c] < thr).sum() / c.sum() for d, c in zip(dists[has], counted[has], strict=True)]
    cnt = int(has.sum())
    avg_acc = float(per_joint[has].mean()) if cnt else 0.0
    return np.concatenate([[avg_acc if cnt else 0.0], per_joint]), avg_acc, cnt, pred


# ----------------------------------------------------------------------------------------- evaluator


class PoseEvaluator:
    """Keypoint evaluation in detectron2's evaluator shape: :meth:`reset`, :meth:`process` each batch's
    heatmaps, then :meth:`evaluate` (gathers every process's instances; rank 0 writes the files).

    Decoding, rescoring and NMS are the :class:`~hrnet.tasks.pose.postprocess.PoseDecoder` prediction uses.
    COCO-format sets give the ten COCO numbers (results written with the dataset's ``category_id``); MPII
    gives PCKh, with the official ``gt_valid.mat`` head boxes (``mpii_gt``) or a documented fallback.
    """

    def __init__(self, dataset: Any, decoder: PoseDecoder, out_dir: str | os.PathLike, *,
                 mpii: bool = False, mpii_gt: Path | None = None) -> None:
        self.dataset = dataset
        self.decoder = decoder
        self.out_dir = Path(out_dir)
        self.mpii = mpii
        self.mpii_gt = mpii_gt
        self.reset()

    def reset(self) -> None:
        self._instances: list[dict[str, Any]] = []

    def process(self, batch: dict[str, Any], heatmaps: Tensor) -> None:
        """Decode one batch of crops (``center``, ``scale``, ``score``, ``index`` of the dataset items)."""
        index = [int(i) for i in batch["index"]]
        image_ids = [self.dataset.instances[i].image_id for i in index]
        instances = self.decoder.decode(heatmaps, _numpy(batch["center"]), _numpy(batch["scale"]),
                                        [float(v) for v in batch["score"]], image_ids)
        for i, inst in zip(index, instances, strict=True):
            inst["index"] = i
        self._instances.extend(instances)

    def evaluate(self) -> dict[str, float]:
        seen: dict[int, dict[str, Any]] = {}
        for part in all_gather_object(self._instances):
            for inst in part:
                seen.setdefault(inst["index"], inst)  # a distributed sampler may repeat samples
        instances = [seen[i] for i in sorted(seen)]
        return self._evaluate_mpii(instances) if self.mpii else self._evaluate_coco(instances)

    def _evaluate_coco(self, instances: list[dict[str, Any]]) -> dict[str, float]:
        kept = self.decoder.select(instances)
        results = coco_keypoint_results(kept, category_id=self.dataset.coco.getCatIds()[0])
        if is_main_process():
            write_results(self.out_dir / "keypoints_val_results.json", results)
        sigmas = self.decoder.sigmas
        metrics = evaluate_coco_keypoints(self.dataset.coco, results, sigmas=sigmas, verbose=is_main_process())
        report = self.dataset.report
        gt_boxes = bool(report and report.gt_boxes)
        if gt_boxes:
            logger.warning(GT_BOX_WARNING)
        if is_main_process():
            write_json(self.out_dir / "keypoints_val_summary.json", {
                "metrics": metrics,
                "boxes": "ground truth" if gt_boxes else "detections",
                "warning": GT_BOX_WARNING if gt_boxes else None,
                "num_instances": len(instances),
                "num_results": len(results),
                "skipped_missing_images": report.missing_images if report else 0,
            }, indent=2)
        return {**metrics, "gt_boxes": float(gt_boxes)}

    def _evaluate_mpii(self, instances: list[dict[str, Any]]) -> dict[str, float]:
        insts = [self.dataset.instances[x["index"]] for x in instances]
        preds = np.stack([x["keypoints"][:, :2] for x in instances]).astype(np.float64) if instances else \
            np.zeros((0, 16, 2))
        if self.mpii_gt is not None:
            gt = load_mpii_gt_mat(self.mpii_gt)
            ids = np.array([x.image_id for x in insts])
            if len(gt["gt"]) <= ids.max(initial=-1):
                raise DataError(f"{self.mpii_gt} has {len(gt['gt'])} people but the annotation file has at "
                                f"least {ids.max() + 1}")
            truth, visible, heads = gt["gt"][ids], gt["visible"][ids], gt["head_sizes"][ids]
            preds = preds + 1.0  # the .mat file is in MATLAB 1-based pixels
            protocol = "official (gt_valid.mat head boxes)"
        else:
            truth = np.stack([x.joints for x in insts]) if insts else np.zeros((0, 16, 2))
            visible = np.stack([x.joints_vis for x in insts]) if insts else np.zeros((0, 16))
            heads = head_sizes_from_joints(truth, visible)
            keep = ~np.isnan(heads)
            truth, visible, heads, preds = truth[keep], visible[keep], heads[keep], preds[keep]
            protocol = "fallback head size sqrt(2) x |head_top - upper_neck| (no gt_valid.mat given)"
            logger.warning("MPII PCKh with a %s; the official protocol needs data.mpii_gt_file", protocol)
        metrics = mpii_pckh(preds, truth, visible, heads)
        if is_main_process():
            write_json(self.out_dir / "mpii_val_predictions.json",
                       {"image_ids": [x.image_id for x in insts], "preds": preds.tolist()})
            write_json(self.out_dir / "mpii_val_summary.json", {"metrics": metrics, "protocol": protocol}, indent=2)
            logger.info("MPII PCKh@0.5 (%s): %s", protocol, {k: round(v, 2) for k, v in metrics.items()})
        return {**metrics, "PCKh": metrics["Mean"]}


def _numpy(value: Any) -> np.ndarray:
    return value.cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
