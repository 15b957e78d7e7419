"""Training checkpoints: written atomically, loaded without executing code.

A checkpoint is a dict of tensors and plain values (``torch.load(weights_only=True)`` reads it)::

    format: "hrnet-checkpoint"   version: 1
    model, optimizer, scheduler, scaler      state dicts (optimizer/scheduler/scaler absent in ``best``)
    epoch, iter_in_epoch, global_iter        where training stands: ``iter_in_epoch`` batches of
                                             ``epoch`` are done (0 at an epoch boundary)
    best_metric, best_epoch                  best validation value so far (None before any)
    rng                                      per-process RNG states (see ``seeding.capture_rng_state``)
    loader_generator                         state of the training DataLoader's generator
    world_size                               number of processes that wrote it
    config                                   the resolved experiment config (plain dict)

The run directory holds ``checkpoints/last.pt`` (rewritten every ``checkpoint_every_iters`` iterations
and at every epoch end), ``checkpoints/best.pt`` (model only, best validation ``main_metric``) and
optional ``checkpoints/epoch_NNNN.pt`` snapshots.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..io import atomic_write
from ..models.weights import describe_state_dict, load_weights, non_float_weights, torch_load_safely

__all__ = [
    "CHECKPOINT_FORMAT",
    "last_checkpoint_path",
    "best_checkpoint_path",
    "periodic_checkpoint_path",
    "save_checkpoint",
    "load_checkpoint",
    "is_training_checkpoint",
    "load_state_dict_checked",
    "load_model_weights",
]

CHECKPOINT_FORMAT = "hrnet-checkpoint"
CHECKPOINT_VERSION = 1


def last_checkpoint_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints" / "last.pt"


def best_checkpoint_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints" / "best.pt"


def periodic_checkpoint_path(output_dir: str | Path, epoch: int) -> Path:
    return Path(output_dir) / "checkpoints" / f"epoch_{epoch:04d}.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` through a temporary file and a rename: a crash leaves the previous
    file intact, never a half-written one."""
    state = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    try:
        with atomic_write(path, "wb") as f:
            torch.save(state, f)
    except (OSError, RuntimeError) as e:  # torch's writer wraps the OSError of a full disk
        cause = e if isinstance(e, OSError) else e.__cause__ or e.__context__
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(cause.errno, os.strerror(cause.errno), str(path)) from None
        raise


def _torch_load(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return torch_load_safely(path)


def is_training_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``, on the CPU; a :class:`CheckpointError` names any problem."""
    path = Path(path)
    state = _torch_load(path)
    if not is_training_checkpoint(state):
        raise CheckpointError(f"{path} is not an hrnet training checkpoint (no 'format: {CHECKPOINT_FORMAT}')")
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer hrnet (checkpoint version {state['version']})")
    return state


def load_state_dict_checked(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state_dict)`` (strict) with one message listing every mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{key} {tuple(state_dict[key].shape)} vs model {tuple(own[key].shape)}"
        for key in own
        if key in state_dict and state_dict[key].shape != own[key].shape
    ]
    wrong_dtype = non_float_weights(state_dict, own)
    if missing or unexpected or shapes or wrong_dtype:

        def listing(title: str, items: list[str]) -> str:
            more = f" ... (+{len(items) - 5} more)" if len(items) > 5 else ""
            return f" {title} ({len(items)}): {', '.join(items[:5])}{more}." if items else ""

        raise CheckpointError(
            f"the weights in {source} do not fit this model."
            + listing("missing keys", missing)
            + listing("unexpected keys", unexpected)
            + listing("shape mismatches", shapes)
            + listing("integer tensors where the model has floating point", wrong_dtype)
            + (f" In short: the file holds {describe_state_dict(state_dict)}; the model has "
               f"{describe_state_dict(own)}. A checkpoint of an hrnet run fits the model of that run's own config.yaml "
               "(written in its output folder, beside checkpoints/): evaluate or predict with that config."
               if missing or unexpected or shapes else "")
        )
    model.load_state_dict(state_dict)


def load_model_weights(model: nn.Module, path: str | Path) -> None:
    """Load weights for evaluation or prediction: an hrnet training checkpoint (``last.pt``,
    ``best.pt``...) strictly; any other file (official or timm checkpoints, safetensors) through
    :func:`hrnet.models.weights.load_weights`, which understands their layouts."""
    path = Path(path)
    if path.suffix == ".pt" and path.is_file():
        state = _torch_load(path)
        if is_training_checkpoint(state):
            load_state_dict_checked(model, state["model"], str(path))
            return
    load_weights(model, path)
