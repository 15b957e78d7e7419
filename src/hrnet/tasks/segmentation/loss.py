"""Training losses of the official HRNet segmentation code (``lib/core/criterion.py``).

Logits come at 1/4 resolution and are upsampled bilinearly to the label size before the loss.
Models with several outputs (OCR: ``[aux, out]``) are combined with ``balance_weights`` (OCR:
``[0.4, 1]``); with OHEM only the last output uses hard-example mining.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .classes import CITYSCAPES_CLASS_WEIGHTS, IGNORE_INDEX
from .inference import resize_logits

__all__ = [
    "CITYSCAPES_CLASS_WEIGHTS",
    "upsample_to_label",
    "CrossEntropyLoss",
    "OhemCrossEntropyLoss",
    "SegmentationLoss",
    "build_loss",
]


def upsample_to_label(logits: Tensor, target: Tensor, align_corners: bool = False) -> Tensor:
    """Resize ``(N, K, h, w)`` logits to the ``(N, H, W)`` label size if they differ (official criterion)."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = resize_logits(logits, target.shape[-2:], align_corners)
    return logits


class _WeightedCE(nn.Module):
    def __init__(self, ignore_index: int, weight: Sequence[float] | Tensor | None, align_corners: bool) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def pixel_losses(self, logits: Tensor, target: Tensor) -> Tensor:
        """Per-pixel weighted cross-entropy ``(N, H, W)``, 0 at ignored pixels (official ``_ce_forward``)."""
        logits = upsample_to_label(logits, target, self.align_corners)
        return F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index, reduction="none")


class CrossEntropyLoss(_WeightedCE):
    """Cross-entropy with optional class weights (official ``CrossEntropy``): the weighted mean
    ``sum(w[y] * l) / sum(w[y])`` over labelled pixels, after upsampling the logits to the label size."""

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        weight: Sequence[float] | Tensor | None = None,
        align_corners: bool = False,
    ) -> None:
        super().__init__(ignore_index, weight, align_corners)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logits = upsample_to_label(logits, target, self.align_corners)
        return F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index)


class OhemCrossEntropyLoss(_WeightedCE):
    """Online hard example mining cross-entropy (official ``OhemCrossEntropy``).

    Labelled pixels are sorted by the softmax probability of their true class; the threshold is
    ``max(p[min_kept], thresh)`` (``p`` sorted ascending, index clipped to the last pixel) and the loss
    is the plain mean of the weighted per-pixel losses of the pixels with ``p < threshold``. So at least
    ``min_kept`` of the hardest pixels count, and every pixel below ``thresh``. Official training values:
    ``thresh=0.9, min_kept=131072``. A batch without any selected pixel gives a zero loss.
    """

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        thresh: float = 0.7,
        min_kept: int = 100000,
        weight: Sequence[float] | Tensor | None = None,
        align_corners: bool = False,
    ) -> None:
        super().__init__(ignore_index, weight, align_corners)
        self.thresh = thresh
        self.min_kept = max(1, min_kept)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logits = upsample_to_label(logits, target, self.align_corners)
        losses = self.pixel_losses(logits, target).reshape(-1)
        labelled = target.reshape(-1) != self.ignore_index
        true_class = target.masked_fill(target == self.ignore_index, 0)
        with torch.no_grad():  # the probabilities only select pixels
            prob = logits.softmax(dim=1).gather(1, true_class.unsqueeze(1)).reshape(-1)[labelled]
        if prob.numel() == 0:
            return logits.sum() * 0.0
        prob, order = prob.sort()
        threshold = max(float(prob[min(self.min_kept, prob.numel() - 1)]), self.thresh)
        selected = losses[labelled][order][prob < threshold]
        return selected.mean() if selected.numel() else logits.sum() * 0.0


class SegmentationLoss(nn.Module):
    """Weighted sum of the loss of each model output (official ``BALANCE_WEIGHTS``).

    A single tensor output takes one weight (the default ``(1,)``). For an OHEM
    criterion the earlier (auxiliary) outputs use the plain per-pixel cross-entropy averaged over *all*
    pixels, ignored ones counting as 0: the official ``OhemCrossEntropy`` returns that per-pixel map for them
    and the training loop takes its ``mean()``.
    """

    def __init__(
        self, criterion: CrossEntropyLoss | OhemCrossEntropyLoss, balance_weights: Sequence[float] = (1.0,)
    ) -> None:
        super().__init__()
        self.criterion = criterion
        self.balance_weights = tuple(float(w) for w in balance_weights)

    def forward(self, outputs: Tensor | Sequence[Tensor], target: Tensor) -> Tensor:
        outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
        if len(outputs) != len(self.balance_weights):
            raise ValueError(
                f"the model returned {len(outputs)} outputs but {len(self.balance_weights)} "
                f"balance weights are configured ({list(self.balance_weights)})"
            )
        total = 0.0
        for i, (weight, logits) in enumerate(zip(self.balance_weights, outputs, strict=True)):
            last = i == len(outputs) - 1
            if last or not isinstance(self.criterion, OhemCrossEntropyLoss):
                total = total + weight * self.criterion(logits, target)
            else:
                total = total + weight * self.criterion.pixel_losses(logits, target).mean()
        return total


def build_loss(
    kind: Literal["ce", "ohem"] = "ce",
    *,
    ignore_index: int = IGNORE_INDEX,
    class_weights: Sequence[float] | Literal["cityscapes"] | None = None,
    balance_weights: Sequence[float] = (1.0,),
    ohem_thresh: float = 0.9,
    ohem_min_kept: int = 131072,
    align_corners: bool = False,
) -> SegmentationLoss:
    """The configured loss; ``class_weights="cityscapes"`` is :data:`CITYSCAPES_CLASS_WEIGHTS`."""
    weight = CITYSCAPES_CLASS_WEIGHTS if class_weights == "cityscapes" else class_weights
    if kind == "ohem":
        criterion = OhemCrossEntropyLoss(ignore_index, ohem_thresh, ohem_min_kept, weight, align_corners)
    else:
        criterion = CrossEntropyLoss(ignore_index, weight, align_corners)
    return SegmentationLoss(criterion, balance_weights)
