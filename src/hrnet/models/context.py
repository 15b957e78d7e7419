"""Running a model for inference without changing it for its caller (detectron2's ``inference_context``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["inference_context"]


@contextlib.contextmanager
def inference_context(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no gradients inside the block; the model's training mode is restored on the way out,
    also when the block raises, so a function may run a model that is being trained."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)
