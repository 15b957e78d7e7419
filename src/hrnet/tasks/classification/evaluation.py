"""Top-k accuracy, as the official ``lib/core/evaluate.py`` computes it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["accuracy", "topk_correct"]


def topk_correct(logits: Tensor, targets: Tensor, topk: Sequence[int] = (1, 5)) -> list[int]:
    """How many rows of ``logits`` (N, C) have their target class among their ``k`` highest scores, per k.

    Ties are broken by ``torch.topk`` (sorted, largest first), as in the official code. ``k`` larger
    than the number of classes counts every sample as correct.
    """
    maxk = min(max(topk), logits.shape[1])
    _, predicted = logits.topk(maxk, dim=1, largest=True, sorted=True)
    hits = predicted.eq(targets.view(-1, 1))
    return [int(hits[:, :k].sum()) for k in topk]


def accuracy(output: Tensor, target: Tensor, topk: Sequence[int] = (1,)) -> list[Tensor]:
    """Top-k accuracies in percent, one 1-element tensor per ``k`` (the official ``accuracy`` function).

    The official validation averages these per-batch numbers weighted by batch size, which equals
    ``100 * topk_correct / N`` over the whole split.
    """
    with torch.no_grad():
        correct = topk_correct(output, target, topk)
        return [torch.tensor([c * 100.0 / target.size(0)]) for c in correct]
