"""What training, evaluation and prediction all start with: a device, the task and its model."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..models.weights import load_weights
from .checkpoint import load_model_weights
from .config import ExperimentConfig
from .task import Task, get_task_class

__all__ = ["resolve_device", "build_task", "build_model", "amp_dtype"]


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU. Under ``torchrun`` a bare ``cuda`` means this
    process's GPU (``cuda:LOCAL_RANK``)."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {spec!r} was asked for, but CUDA is not available here; use device=cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device: 'mps' was asked for, but MPS is not available here; use device=cpu")
    return device


def amp_dtype(amp: bool | str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.amp``: ``true`` is bf16 on CPU and fp16 on CUDA; ``false`` is None."""
    if amp is False:
        return None
    if amp is True:
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def build_task(cfg: ExperimentConfig) -> Task:
    return get_task_class(cfg.task)(cfg)


def build_model(task: Task, cfg: ExperimentConfig, weights: str | Path | None = None) -> nn.Module:
    """The task's model, with ``weights`` (a checkpoint to evaluate or predict with) or else
    ``model.init_from`` (the starting point of training) loaded into it."""
    model = task.build_model()
    if weights is not None:
        load_model_weights(model, weights)
    elif cfg.model.init_from is not None:
        load_weights(model, cfg.model.init_from, backbone_only=cfg.model.init_backbone_only)
    return model
