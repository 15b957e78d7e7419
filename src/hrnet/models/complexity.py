"""Parameters and GFLOPs with the HRNet papers' convention.

GFLOPs = multiply-adds of convolution and linear layers only, divided by 1024**3: a conv counts
``prod(weight.shape) * H_out * W_out``, a linear ``out_numel * in_features``; bias, BN, ReLU, pooling,
upsampling and attention matmuls are ignored. Parameters are those of the conv, BN and linear layers
that run in the forward pass. The forward runs on the ``meta`` device, so even 1024x2048 segmentation
costs no memory or compute.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import torch
from torch import nn
from torch.func import functional_call

from .context import inference_context

__all__ = ["Complexity", "complexity", "matches_printed"]

COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)
PARAM_LAYERS = (*COUNTED, nn.modules.batchnorm._BatchNorm, nn.GroupNorm)


class Complexity(NamedTuple):
    """``params`` (count), ``gflops`` (multiply-adds / 1024**3) and ``macs`` (multiply-adds)."""

    params: int
    gflops: float
    macs: int

    @property
    def params_m(self) -> float:
        """Parameters in millions, as the paper prints them."""
        return self.params / 1e6

    def __getitem__(self, key):  # also allow c["params"], c["gflops"]
        return getattr(self, key) if isinstance(key, str) else tuple.__getitem__(self, key)


def _input_shape(input_size, in_channels: int) -> tuple[int, ...]:
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) == 2:
        return (1, in_channels, *size)
    if len(size) == 3:
        return (1, *size)
    if len(size) == 4:
        return size
    raise ValueError(f"input_size must be H, (H, W), (C, H, W) or (N, C, H, W); got {input_size!r}")


def complexity(model: nn.Module, input_size: int | tuple[int, ...] = (224, 224)) -> Complexity:
    """Count params and multiply-adds of one forward pass at ``input_size`` (batch 1)."""
    in_channels = getattr(getattr(model, "cfg", None), "in_channels", 3)
    shape = _input_shape(input_size, in_channels)
    macs, params, hooks = [0], [0], []

    def hook(module: nn.Module, inputs, output) -> None:
        params[0] += sum(p.numel() for p in module.parameters(recurse=False))
        if isinstance(module, nn.Linear):
            macs[0] += output.numel() // shape[0] * module.in_features
        elif isinstance(module, COUNTED):
            macs[0] += module.weight.numel() * output[0].numel() // output.shape[1]

    for m in model.modules():
        if isinstance(m, PARAM_LAYERS):
            hooks.append(m.register_forward_hook(hook))
    meta = {n: torch.empty_like(t, device="meta")
            for n, t in itertools.chain(model.named_parameters(), model.named_buffers())}
    try:
        with inference_context(model):
            functional_call(model, meta, (torch.empty(shape, device="meta"),))
    finally:
        for h in hooks:
            h.remove()
    return Complexity(params[0], macs[0] / 1024**3, macs[0])


def matches_printed(value: float, printed: str) -> bool:
    """Whether ``value`` prints as ``printed`` at its precision (rounded, or truncated as the papers
    sometimes do, e.g. 70.37M printed as 70.3M)."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    scale = 10**decimals
    return f"{value:.{decimals}f}" == printed or f"{int(value * scale) / scale:.{decimals}f}" == printed
