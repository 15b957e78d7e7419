"""Batch-norm folding: a copy of a model whose convolutions absorb the BatchNorm that follows them.

In eval mode ``BN(conv(x)) = conv'(x)`` with ``w' = w * g / sqrt(var + eps)`` and
``b' = (b - mean) * g / sqrt(var + eps) + beta``. HRNet has one BN per convolution (292 in pose
W32), each a separate pass over memory, so folding them removes about a third of the kernels.

Which BN follows which conv is read from the graph of one forward pass (``torch.export``), not from
module names, so it works for every head (the OCR head keeps its BN inside a nested ``Sequential``)
and never folds a BN whose conv output is also used elsewhere.
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..models.context import inference_context

__all__ = ["conv_bn_pairs", "fold_batchnorm"]


def _module_of(fqn: str) -> str:
    return fqn.rsplit(".", 1)[0] if "." in fqn else ""


def conv_bn_pairs(model: nn.Module, example: Tensor) -> list[tuple[str, str]]:
    """``(conv name, bn name)`` for every ``BatchNorm2d`` that only normalises one ``Conv2d``'s output.

    A pair qualifies when the conv output feeds nothing but the BN, and neither module is called
    more than once in the forward pass (shared modules cannot be folded for one call only).
    """
    with inference_context(model):
        program = torch.export.export(model, (example,), strict=False)
    signature = program.graph_signature
    tensor_names = {**signature.inputs_to_parameters, **signature.inputs_to_buffers}
    convs, norms = [], []
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        if node.target is torch.ops.aten.conv2d.default:
            convs.append(node)
        elif node.target is torch.ops.aten.batch_norm.default:
            norms.append(node)
    conv_nodes = set(convs)
    calls = Counter(tensor_names.get(node.args[1].name) for node in convs)
    calls.update(tensor_names.get(node.args[3].name) for node in norms)  # running_mean identifies the BN
    pairs = []
    for bn in norms:
        conv = bn.args[0]
        if conv not in conv_nodes or len(conv.users) != 1:
            continue
        weight, running_mean = tensor_names.get(conv.args[1].name), tensor_names.get(bn.args[3].name)
        if weight is None or running_mean is None or calls[weight] != 1 or calls[running_mean] != 1:
            continue
        pairs.append((_module_of(weight), _module_of(running_mean)))
    return pairs


def fold_batchnorm(model: nn.Module, example: Tensor) -> nn.Module:
    """An eval-mode copy of ``model`` with every foldable BN merged into its conv (``model`` untouched).

    The copy keeps the model's class, attributes and ``forward`` (the folded BNs become
    ``nn.Identity``), so it is called exactly like the original; it is for inference only.
    ``example`` is one input batch, used to trace which conv feeds which BN.
    """
    folded = copy.deepcopy(model).eval()
    for conv_name, bn_name in conv_bn_pairs(folded, example):
        conv, bn = folded.get_submodule(conv_name), folded.get_submodule(bn_name)
        if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d) or bn.running_var is None:
            continue
        conv.weight, conv.bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
        folded.set_submodule(bn_name, nn.Identity())
    return folded
