"""Optimizers and learning-rate schedules of the HRNet recipes.

- pose: Adam, lr 1e-3, **no weight decay**, x0.1 at epochs 170 and 200 (``multistep``, ``per: epoch``);
- segmentation: SGD momentum 0.9, ``poly`` with power 0.9 ``per: iter``;
- classification: SGD nesterov, x0.1 at epochs 30/60/90;
- detection: SGD with a linear warmup (500 iterations from 1/3) and steps at epochs 8 and 11.

The schedule is one :class:`~torch.optim.lr_scheduler.LambdaLR` stepped after every iteration, whose
factor :func:`lr_factor` is a pure function of the iteration, so it resumes exactly.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from .config import OptimizerConfig, ScheduleConfig

__all__ = ["build_optimizer", "lr_factor", "build_scheduler"]


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """SGD (momentum, nesterov), Adam or AdamW over ``params``, weight decay only if configured."""
    params = [p for p in params if p.requires_grad]
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def lr_factor(iteration: int, cfg: ScheduleConfig, iters_per_epoch: int, epochs: int) -> float:
    """The multiplier of the base lr at global (0-based) ``iteration``.

    With ``per: epoch`` the schedule sees ``t = iteration // iters_per_epoch`` and ``T = epochs``, so
    epoch ``e`` trains entirely at the lr of ``e`` (milestones in epochs); with ``per: iter``,
    ``t = iteration`` and ``T = epochs x iters_per_epoch`` (milestones in iterations).

    - ``constant``: 1
    - ``multistep``: ``gamma ** (number of milestones <= t)``
    - ``poly``: ``(1 - t / T) ** power``
    - ``cosine``: ``(1 + cos(pi t / T)) / 2``

    During the first ``warmup_iters`` iterations the factor is further multiplied by
    ``warmup_ratio + (1 - warmup_ratio) * iteration / warmup_iters`` (linear warmup).

    Note: the official segmentation code sets the poly lr after each optimizer step, so its
    iteration ``k`` uses the factor of ``k - 1``; the difference is negligible and not reproduced.
    """
    if cfg.per == "epoch":
        t, total = iteration // iters_per_epoch, epochs
    else:
        t, total = iteration, epochs * iters_per_epoch
    if cfg.name == "multistep":
        factor = cfg.gamma ** bisect.bisect_right(cfg.milestones, t)
    elif cfg.name == "poly":
        factor = max(0.0, 1 - t / total) ** cfg.power
    elif cfg.name == "cosine":
        factor = 0.5 * (1 + math.cos(math.pi * min(t, total) / total))
    else:
        factor = 1.0
    if iteration < cfg.warmup_iters:
        factor *= cfg.warmup_ratio + (1 - cfg.warmup_ratio) * iteration / cfg.warmup_iters
    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, iters_per_epoch: int, epochs: int
) -> LambdaLR:
    """A per-iteration ``LambdaLR`` following :func:`lr_factor`; call ``step()`` after each iteration."""

    def factor(iteration: int) -> float:
        return lr_factor(iteration, cfg, iters_per_epoch, epochs)

    return LambdaLR(optimizer, factor)
