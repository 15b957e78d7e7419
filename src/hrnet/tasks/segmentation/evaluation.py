"""Confusion matrix and the metrics derived from it (official ``get_confusion_matrix`` and ``testval``).

The confusion matrix ``C[gt, pred]`` counts labelled pixels; it is additive over images and over DDP
ranks (:func:`reduce_confusion_matrix`), and every metric is computed once from the total.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["confusion_matrix", "segmentation_metrics", "reduce_confusion_matrix"]


def confusion_matrix(
    label: Tensor | np.ndarray, pred: Tensor | np.ndarray, num_classes: int, ignore_index: int = 255
) -> Tensor:
    """``(K, K)`` int64 counts, rows = ground truth, columns = prediction (official ``get_confusion_matrix``).

    ``label``: ``(..., H, W)`` class ids. ``pred``: class ids of the same shape, or scores with one more
    axis at position -3 (``(N, K, H, W)``), reduced by argmax (first maximum on ties, as ``np.argmax``).
    Pixels whose label is ``ignore_index`` are skipped, and so are labels outside ``0..K-1`` (the
    official code drops those from the matrix too).
    """
    label = torch.as_tensor(label)
    pred = torch.as_tensor(pred)
    if pred.dim() == label.dim() + 1:
        pred = pred.argmax(dim=-3)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} does not match label shape {tuple(label.shape)}")
    label = label.reshape(-1).to(device=pred.device, dtype=torch.int64)
    pred = pred.reshape(-1).to(torch.int64)
    keep = (label != ignore_index) & (label >= 0) & (label < num_classes)
    index = label[keep] * num_classes + pred[keep]
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def segmentation_metrics(conf: Tensor | np.ndarray, absent: Literal["zero", "ignore"] = "zero") -> dict:
    """mIoU, per-class IoU, pixel accuracy and mean class accuracy of a confusion matrix.

    ``absent="zero"`` is the official formula: ``IoU = tp / max(1, gt + pred - tp)``, so a class that
    appears neither in the labels nor in the predictions scores 0 and still counts in the mean;
    ``mean_acc = mean(tp / max(1, gt))``. ``absent="ignore"`` leaves such classes out of the means (their
    IoU is NaN; mean accuracy over classes with labelled pixels), which is what a small or partial
    evaluation set needs. On a full benchmark every class occurs and the two agree.

    Returns ``{"mIoU", "pixel_acc", "mean_acc"}`` floats and ``"IoU"``, a float64 array of length K.
    """
    conf = torch.as_tensor(conf).detach().cpu().double().numpy()
    gt = conf.sum(1)
    predicted = conf.sum(0)
    tp = np.diag(conf)
    union = gt + predicted - tp
    iou = tp / np.maximum(1.0, union)
    acc = tp / np.maximum(1.0, gt)
    pixel_acc = float(tp.sum() / gt.sum()) if gt.sum() > 0 else 0.0
    if absent == "zero":
        return {"mIoU": float(iou.mean()), "pixel_acc": pixel_acc, "mean_acc": float(acc.mean()), "IoU": iou}
    iou = np.where(union > 0, iou, np.nan)
    miou = float(np.nanmean(iou)) if (union > 0).any() else 0.0
    mean_acc = float(acc[gt > 0].mean()) if (gt > 0).any() else 0.0
    return {"mIoU": miou, "pixel_acc": pixel_acc, "mean_acc": mean_acc, "IoU": iou}


def reduce_confusion_matrix(conf: Tensor) -> Tensor:
    """Sum a confusion matrix over all DDP ranks (``all_reduce``); unchanged without a process group.

    Every rank gets the total, so each can compute the same metrics.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return conf
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else conf.device
    total = conf.to(device=device, dtype=torch.int64).clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.to(conf.device)
