"""Seeding and random-number-generator state, so runs repeat and resumed runs continue exactly.

RNG states are stored as tensors and plain Python values so that checkpoints load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from typing import Any

import numpy as np
import torch

__all__ = [
    "seed_everything",
    "configure_determinism",
    "worker_init_fn",
    "capture_rng_state",
    "restore_rng_state",
]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_determinism(deterministic: bool) -> None:
    """Deterministic kernels when asked (slower on GPU); otherwise let cuDNN pick the fastest ones."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if deterministic != torch.are_deterministic_algorithms_enabled():  # the call imports torch's compiler
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def worker_init_fn(worker_id: int) -> None:
    """Seed ``random`` and NumPy in a DataLoader worker from torch's per-worker seed, and leave the
    terminal's process group.

    torch seeds each worker from the loader's generator, but leaves ``random`` and NumPy as copies of
    the parent's state, so without this every worker would draw the same numbers. A Ctrl-C (or a
    signal sent to the whole group) would kill the workers before the trainer can save a checkpoint;
    in their own group they stop when the trainer does."""
    if hasattr(os, "setpgid"):  # POSIX
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def disable_opencv_threads() -> None:
    """Turn OpenCV's thread pool off before forking DataLoader workers.

    A worker forked while the parent's OpenCV pool exists can deadlock on its first parallel OpenCV
    call (the usual practice of mmcv and detectron2); the workers already run in parallel."""
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(0)


def capture_rng_state() -> dict[str, Any]:
    """The state of every global RNG, as tensors and plain values."""
    version, internal, gauss_next = random.getstate()
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back the RNG states returned by :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
