"""BatchNorm whose batch statistics span every process, on any device and backend (gloo included).

torch's ``nn.SyncBatchNorm`` accepts GPU inputs only. :class:`SyncBatchNorm` here does the same
arithmetic with plain tensor operations and ``all_reduce``: in forward it sums the count and the sum
of each channel over the processes, then the sum of squared deviations from that global mean (two
passes: no cancellation in ``E[x^2] - E[x]^2``); in backward it sums the two reductions of the
gradient that the input gradient needs. N processes with batch B then compute what one process with
batch N x B computes, up to floating-point rounding. The trainer uses it for ``train.sync_bn`` on
non-CUDA devices; the state-dict keys are BatchNorm's, so checkpoints move freely between the two.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .distributed import is_distributed

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm"]


def _channel_sum(x: Tensor) -> Tensor:
    """Per-channel sum over every dimension but 1, in float64."""
    return x.sum(dim=[d for d in range(x.dim()) if d != 1], dtype=torch.float64)


def _as_channels(v: Tensor, x: Tensor) -> Tensor:
    return v.to(x.dtype).reshape(1, -1, *([1] * (x.dim() - 2)))


def _all_reduce(t: Tensor) -> Tensor:
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class _SyncBatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float):  # type: ignore[override]
        count = torch.full((1,), x.numel() // x.shape[1], dtype=torch.float64, device=x.device)
        count_sum = _all_reduce(torch.cat([count, _channel_sum(x)]))
        n = count_sum[0].clone()
        mean = count_sum[1:] / n
        centered = x - _as_channels(mean, x)
        var = _all_reduce(_channel_sum(centered * centered)) / n
        invstd = torch.rsqrt(var + eps)
        x_hat = centered * _as_channels(invstd, x)
        ctx.save_for_backward(x_hat, weight, invstd)
        ctx.n = n
        ctx.mark_non_differentiable(mean, var, n)
        out = x_hat
        if weight is not None:
            out = out * _as_channels(weight, x)
        if bias is not None:
            out = out + _as_channels(bias, x)
        return out, mean, var, n

    @staticmethod
    def backward(ctx, grad_out: Tensor, *_):  # type: ignore[override]
        x_hat, weight, invstd = ctx.saved_tensors
        sum_dy, sum_dy_xhat = _channel_sum(grad_out), _channel_sum(grad_out * x_hat)
        grad_weight = sum_dy_xhat.to(weight.dtype) if weight is not None and ctx.needs_input_grad[1] else None
        grad_bias = sum_dy.to(weight.dtype) if weight is not None and ctx.needs_input_grad[2] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            # the loss of every process depends on this one's inputs through the shared statistics
            both = _all_reduce(torch.cat([sum_dy, sum_dy_xhat])) / ctx.n
            mean_dy, mean_dy_xhat = both.chunk(2)
            scale = invstd if weight is None else invstd * weight.double()
            grad_x = (grad_out - _as_channels(mean_dy, grad_out) - x_hat * _as_channels(mean_dy_xhat, grad_out))
            grad_x = grad_x * _as_channels(scale, grad_out)
        return grad_x, grad_weight, grad_bias, None


class SyncBatchNorm(_BatchNorm):
    """``nn.BatchNorm*d`` with batch statistics over all processes while training under
    ``torch.distributed`` (any backend); plain BatchNorm otherwise (one process, or eval mode)."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D input)")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if not (self.training and is_distributed()):
            return super().forward(input)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        out, mean, var, n = _SyncBatchNormFunction.apply(input, self.weight, self.bias, self.eps)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                unbiased = var * n / (n - 1).clamp(min=1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        return out


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm layer replaced by :class:`SyncBatchNorm` (same parameters,
    buffers and state-dict keys), as ``nn.SyncBatchNorm.convert_sync_batchnorm`` does for GPUs."""
    if isinstance(module, _BatchNorm) and not isinstance(module, (SyncBatchNorm, nn.SyncBatchNorm)):
        converted = SyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            with torch.no_grad():
                converted.weight = module.weight
                converted.bias = module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child))
    return module
