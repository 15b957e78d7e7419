"""Eager and ``torch.compile`` inference forms of a model: BN folding, channels_last, freezing.

HRNet's runtime on CPU follows its ~300 small serial convolutions, not its FLOPs. Three levers
each remove work around them: folding BN into the convs, the channels_last layout (oneDNN's fast
conv layout, so no reorders between layers), and Inductor with *freezing*, which treats the weights
as constants, pre-packs them for oneDNN and fuses the ReLUs and residual adds into the convs.

Compiled kernels are cached on disk (Inductor's FX-graph cache) under ``~/.cache/hrnet/inductor``
(or ``$HRNET_CACHE_DIR/inductor``; an existing ``TORCHINDUCTOR_CACHE_DIR`` wins), so only the first
compile of a model and input shape pays the full price.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch._inductor.config
from torch import Tensor, nn

from .fold import fold_batchnorm
from .parity import map_tensors

__all__ = ["cache_root", "enable_compile_cache", "prepare_for_inference", "eager_runner", "compile_for_inference"]


def cache_root() -> Path:
    """Where hrnet keeps derived artifacts: ``$HRNET_CACHE_DIR`` or ``~/.cache/hrnet``."""
    return Path(os.environ.get("HRNET_CACHE_DIR", Path.home() / ".cache" / "hrnet")).expanduser()


def enable_compile_cache() -> Path:
    """Point Inductor's on-disk caches at ``cache_root()/inductor`` unless the user chose a place."""
    path = os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "inductor"))
    return Path(path)


def prepare_for_inference(model: nn.Module, example: Tensor, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A BN-folded, channels_last copy of ``model`` in ``dtype`` on ``example``'s device."""
    folded = fold_batchnorm(model, example.to(next(model.parameters()).device))
    return folded.to(device=example.device, dtype=dtype, memory_format=torch.channels_last)


def _runner(module: Callable[[Tensor], Any], dtype: torch.dtype, autocast: torch.dtype | None = None,
            inductor_options: dict[str, Any] | None = None, clone: bool = False) -> Callable[[Tensor], Any]:
    """Call ``module`` on channels_last ``dtype`` images; return fp32 outputs (cloned if asked: CUDA
    graphs reuse their output buffers on the next call).

    ``inductor_options`` are patched into Inductor's config around every call, because compilation
    happens lazily on the first call of each input shape (``torch.compile(options=...)`` does not
    reach the freezing pass in this torch version).
    """
    patch = functools.partial(torch._inductor.config.patch, inductor_options or {})

    def run(images: Tensor) -> Any:
        images = images.to(dtype=dtype).contiguous(memory_format=torch.channels_last)
        with patch(), torch.inference_mode(), torch.autocast(images.device.type, autocast,
                                                              enabled=autocast is not None):
            outputs = module(images)
        return map_tensors(lambda t: t.float().clone() if clone else t.float(), outputs)

    return run


def eager_runner(model: nn.Module, example: Tensor, autocast: torch.dtype | None = None) -> Callable[[Tensor], Any]:
    """BN folding + channels_last, run eagerly; ``autocast`` (e.g. ``torch.float16`` on CUDA) optional."""
    return _runner(prepare_for_inference(model, example), torch.float32, autocast)


def compile_for_inference(model: nn.Module, example: Tensor, dtype: torch.dtype = torch.float32,
                          cuda_graphs: bool = False) -> Callable[[Tensor], Any]:
    """BN folding + channels_last + ``torch.compile`` with freezing, weights and activations in ``dtype``.

    Each input shape compiles once (``dynamic=False``: a kernel specialised to the shape beats a
    shape-generic one); the first call of a shape is slow, later runs reuse the disk cache.
    ``cuda_graphs`` replays the whole forward as one CUDA graph (GPU only).
    """
    enable_compile_cache()
    prepared = prepare_for_inference(model, example, dtype)
    options = {"freezing": True, "triton.cudagraphs": cuda_graphs}
    return _runner(torch.compile(prepared, dynamic=False), dtype, inductor_options=options, clone=cuda_graphs)
