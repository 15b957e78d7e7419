"""Heatmap losses of the official pose code (``lib/core/loss.py``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...errors import ConfigError

__all__ = ["JointsMSELoss", "JointsOHKMMSELoss", "build_loss"]


def _weighted_sq_error(output: Tensor, target: Tensor, target_weight: Tensor | None) -> Tensor:
    """``0.5 * (w * (pred - gt))^2`` averaged over pixels: shape ``(N, K)``."""
    n, k = output.shape[:2]
    pred = output.reshape(n, k, -1)
    gt = target.reshape(n, k, -1)
    if target_weight is not None:
        w = target_weight.reshape(n, k, 1)
        pred, gt = pred * w, gt * w
    return 0.5 * (pred - gt).pow(2).mean(dim=2)


class JointsMSELoss(nn.Module):
    """Official ``JointsMSELoss``: the mean over joints of ``0.5 * MSE(pred * w, gt * w)``.

    Each joint's MSE averages over the batch and the heatmap pixels, so the loss equals
    ``0.5 * mean((w * (pred - gt))^2)`` over all elements. ``w`` is the ``(N, K, 1)`` target weight
    (visibility, optionally times per-joint weights); ``use_target_weight=False`` ignores it.
    """

    def __init__(self, use_target_weight: bool = True) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, output: Tensor, target: Tensor, target_weight: Tensor) -> Tensor:
        w = target_weight if self.use_target_weight else None
        return _weighted_sq_error(output, target, w).mean()


class JointsOHKMMSELoss(nn.Module):
    """Official ``JointsOHKMMSELoss`` (online hard keypoint mining): per sample, the mean of the ``topk``
    largest per-joint losses ``0.5 * MSE(pred * w, gt * w)``, then the mean over the batch."""

    def __init__(self, use_target_weight: bool = True, topk: int = 8) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight
        self.topk = topk

    def forward(self, output: Tensor, target: Tensor, target_weight: Tensor) -> Tensor:
        w = target_weight if self.use_target_weight else None
        per_joint = _weighted_sq_error(output, target, w)
        k = min(self.topk, per_joint.shape[1])
        return torch.topk(per_joint, k=k, dim=1, sorted=False).values.sum(dim=1).div(k).mean()


def build_loss(name: str = "mse", use_target_weight: bool = True, topk: int = 8) -> nn.Module:
    """``mse`` -> :class:`JointsMSELoss`, ``ohkm`` -> :class:`JointsOHKMMSELoss`."""
    if name == "mse":
        return JointsMSELoss(use_target_weight)
    if name == "ohkm":
        return JointsOHKMMSELoss(use_target_weight, topk)
    raise ConfigError(f"unknown pose loss {name!r}; expected 'mse' or 'ohkm'")
