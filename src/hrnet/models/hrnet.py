"""The HRNet backbone: one implementation for pose, segmentation, detection and classification.

Structure (Wang et al., TPAMI, Sec. 3 and Appendix A), with the official module names so that
official checkpoints load with ``strict=True``::

    conv1/bn1 -> conv2/bn2          stem, 3x3 stride-2 convs: 1/4 resolution
    layer1                          stage 1, Bottleneck units (64 -> 256 channels)
    transition1 -> stage2           2 branches  (C, 2C)     1 module
    transition2 -> stage3           3 branches  (C, 2C, 4C) 4 modules
    transition3 -> stage4           4 branches  (..., 8C)   3 modules

Every ``HighResolutionModule`` runs its branches (4 residual units each) and then fuses them: output
``i`` is the sum over inputs ``j`` of identity (``j == i``), 1x1 conv + BN + upsampling (``j > i``)
or a chain of strided 3x3 conv + BN (``j < i``), followed by one ReLU.

The options beyond the released models are the paper's ablations (Sec. 4.5): where fusion happens
(``fusion``), how streams are downsampled in the fusion (``downsample``), sum vs. product fusion
(``fuse_method``) and how resolutions are maintained (``resolution``, see :func:`backbone_config`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "StageConfig",
    "BackboneConfig",
    "HighResolutionModule",
    "HighResolutionNet",
    "backbone_config",
    "batch_norm",
    "FeatureInfo",
]

UpsampleMode = Literal["nearest", "bilinear"]
Fusion = Literal["within", "across", "final"]
Resolution = Literal["progressive", "all_from_start", "high_only"]
#: makes the norm layer of ``channels`` features (torchvision's ``norm_layer``)
NormLayer = Callable[[int], nn.Module]


def batch_norm(momentum: float = 0.1, frozen: bool = False) -> NormLayer:
    """The backbone's norm layer, chosen at construction: ``BatchNorm2d`` with the official momentum, or
    torchvision's ``FrozenBatchNorm2d`` (statistics and affine terms fixed: the detectors' "BN fixed"; the
    state-dict keys are BN's, so BN checkpoints load into it)."""
    if frozen:
        from torchvision.ops.misc import FrozenBatchNorm2d

        return FrozenBatchNorm2d
    return partial(nn.BatchNorm2d, momentum=momentum)


class BasicBlock(nn.Module):
    """3x3 -> BN -> ReLU -> 3x3 -> BN, residual add, ReLU."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 norm: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 (x4), BN after each, ReLU after the first two and the residual add."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 norm: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = norm(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = norm(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def make_layer(block: type[BasicBlock] | type[Bottleneck], inplanes: int, planes: int, blocks: int,
               stride: int = 1, norm: NormLayer = nn.BatchNorm2d) -> nn.Sequential:
    """A run of residual units; the first gets a 1x1 conv + BN shortcut when the shape changes."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
            norm(planes * block.expansion),
        )
    layers = [block(inplanes, planes, stride, downsample, norm=norm)]
    layers += [block(planes * block.expansion, planes, norm=norm) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def conv_bn(cin: int, cout: int, kernel: int, stride: int, norm: NormLayer, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        norm(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class StageConfig:
    """One stage, with the fields of the official ``MODEL.EXTRA.STAGEk``."""

    num_modules: int
    num_branches: int
    num_blocks: tuple[int, ...]
    num_channels: tuple[int, ...]
    block: str = "BASIC"

    def __post_init__(self) -> None:
        if self.block not in BLOCKS:
            raise ValueError(f"unknown block type {self.block!r}; expected one of {sorted(BLOCKS)}")
        if not (len(self.num_blocks) == len(self.num_channels) == self.num_branches):
            raise ValueError(
                f"stage has num_branches={self.num_branches} but num_blocks={list(self.num_blocks)} "
                f"and num_channels={list(self.num_channels)}; all three must agree"
            )

    @property
    def out_channels(self) -> list[int]:
        return [c * BLOCKS[self.block].expansion for c in self.num_channels]


@dataclass(frozen=True)
class BackboneConfig:
    """Everything that defines an HRNet backbone.

    ``stage1`` is the Bottleneck stage (``layer1``); ``stages`` are stages 2-4. ``upsample`` is the
    fusion upsampling: ``nearest`` by a power of two (official pose and classification code) or
    ``bilinear`` to the exact target size (official segmentation code; works for any input size).
    """

    stage1: StageConfig
    stages: tuple[StageConfig, ...]
    upsample: UpsampleMode = "nearest"
    align_corners: bool | None = False
    bn_momentum: float = 0.1
    #: FrozenBatchNorm2d instead of BatchNorm2d in the backbone (detection's fixed BN)
    frozen_bn: bool = False
    fusion: Fusion = "within"
    downsample: Literal["conv", "bilinear"] = "conv"
    fuse_method: Literal["sum", "mul"] = "sum"
    multi_scale_output: bool = True
    in_channels: int = 3

    def __post_init__(self) -> None:
        checks = {
            "upsample": (self.upsample, ("nearest", "bilinear")),
            "fusion": (self.fusion, ("within", "across", "final")),
            "downsample": (self.downsample, ("conv", "bilinear")),
            "fuse_method": (self.fuse_method, ("sum", "mul")),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"backbone option {name}={value!r} is not one of {list(allowed)}")

    @property
    def norm_layer(self) -> NormLayer:
        return batch_norm(self.bn_momentum, self.frozen_bn)

    @property
    def width(self) -> int:
        return self.stages[-1].num_channels[0]

    @property
    def out_channels(self) -> list[int]:
        return self.stages[-1].out_channels


def _standard_stages(width: int, blocks: int = 4, modules: tuple[int, int, int] = (1, 4, 3)) -> tuple:
    return tuple(
        StageConfig(m, n, (blocks,) * n, tuple(width * 2**b for b in range(n)))
        for m, n in zip(modules, (2, 3, 4), strict=True)
    )


def backbone_config(width: int = 32, *, small: str | None = None, resolution: Resolution = "progressive",
                    **options) -> BackboneConfig:
    """The released backbone of width ``C`` (``small='v1'|'v2'``: the W18-small models, widths 16 / 18).

    ``resolution`` picks the paper's resolution-maintenance ablation: ``progressive`` (released models),
    ``all_from_start`` (all four streams right after stage 1, each as deep as the high-resolution one)
    or ``high_only`` (a single high-resolution stream of width ``C``).
    """
    if small == "v1":  # released with width 16
        stage1 = StageConfig(1, 1, (1,), (32,), "BOTTLENECK")
        stages = _standard_stages(width, blocks=2, modules=(1, 1, 1))
    elif small == "v2":  # released with width 18
        stage1 = StageConfig(1, 1, (2,), (64,), "BOTTLENECK")
        stages = _standard_stages(width, blocks=2, modules=(1, 3, 2))
    elif small is None:
        stage1 = StageConfig(1, 1, (4,), (64,), "BOTTLENECK")
        stages = _standard_stages(width)
    else:
        raise ValueError(f"small={small!r}: expected 'v1', 'v2' or None")
    if resolution == "all_from_start":
        last = stages[-1]
        stages = tuple(replace(s, num_branches=4, num_blocks=last.num_blocks, num_channels=last.num_channels)
                       for s in stages)
    elif resolution == "high_only":
        stages = tuple(replace(s, num_branches=1, num_blocks=s.num_blocks[:1], num_channels=s.num_channels[:1])
                       for s in stages)
    elif resolution != "progressive":
        raise ValueError(f"resolution={resolution!r}: expected progressive, all_from_start or high_only")
    return BackboneConfig(stage1=stage1, stages=stages, **options)


def resize_to(x: Tensor, size: tuple[int, int] | torch.Size, mode: UpsampleMode, factor: int,
              align_corners: bool | None) -> Tensor:
    """Upsample ``x`` by ``factor`` (nearest, as ``nn.Upsample``) or to ``size`` (bilinear)."""
    if mode == "nearest":
        return F.interpolate(x, scale_factor=float(factor), mode="nearest")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)


class HighResolutionModule(nn.Module):
    """Parallel branches followed by multi-resolution fusion (``fuse=False`` skips the fusion)."""

    def __init__(self, stage: StageConfig, in_channels: list[int], cfg: BackboneConfig,
                 multi_scale_output: bool = True, fuse: bool = True) -> None:
        super().__init__()
        block = BLOCKS[stage.block]
        self.num_branches = stage.num_branches
        self.multi_scale_output = multi_scale_output
        self.upsample = cfg.upsample
        self.align_corners = cfg.align_corners
        self.downsample = cfg.downsample
        self.fuse_method = cfg.fuse_method
        self.branches = nn.ModuleList(
            make_layer(block, in_channels[b], stage.num_channels[b], stage.num_blocks[b], norm=cfg.norm_layer)
            for b in range(self.num_branches)
        )
        self.out_channels = stage.out_channels
        self.fuse_layers = self._make_fuse_layers(cfg.norm_layer) if fuse and self.num_branches > 1 else None
        self.relu = nn.ReLU(inplace=True)

    def _make_fuse_layers(self, norm: NormLayer) -> nn.ModuleList:
        ch = self.out_channels
        fuse_layers = nn.ModuleList()
        for i in range(self.num_branches if self.multi_scale_output else 1):
            row = nn.ModuleList()
            for j in range(self.num_branches):
                if j > i or (j < i and self.downsample == "bilinear"):
                    row.append(conv_bn(ch[j], ch[i], 1, 1, norm, relu=False))
                elif j == i:
                    row.append(None)
                else:  # i - j strided 3x3 convs; only the last changes the width, and has no ReLU
                    steps = [conv_bn(ch[j], ch[j], 3, 2, norm, relu=True) for _ in range(i - j - 1)]
                    steps.append(conv_bn(ch[j], ch[i], 3, 2, norm, relu=False))
                    row.append(nn.Sequential(*steps))
            fuse_layers.append(row)
        return fuse_layers

    def _fused_input(self, i: int, j: int, xs: list[Tensor]) -> Tensor:
        if i == j:
            return xs[j]
        y = self.fuse_layers[i][j](xs[j])
        if j > i:
            return resize_to(y, xs[i].shape[-2:], self.upsample, 2 ** (j - i), self.align_corners)
        if self.downsample == "bilinear":
            return F.interpolate(y, size=xs[i].shape[-2:], mode="bilinear", align_corners=self.align_corners)
        return y

    def forward(self, x: list[Tensor]) -> list[Tensor]:
        xs = [branch(t) for branch, t in zip(self.branches, x, strict=True)]
        if self.fuse_layers is None:
            return xs if self.multi_scale_output else xs[:1]
        out = []
        for i in range(len(self.fuse_layers)):
            y = self._fused_input(i, 0, xs)
            for j in range(1, self.num_branches):
                z = self._fused_input(i, j, xs)
                y = y * z if self.fuse_method == "mul" else y + z
            out.append(self.relu(y))
        return out


@dataclass(frozen=True)
class FeatureInfo:
    """A named backbone output (detectron2 ``ShapeSpec``-like)."""

    name: str
    channels: int
    stride: int


class HighResolutionNet(nn.Module):
    """HRNet backbone. ``forward`` returns ``{'res2': 1/4, 'res3': 1/8, 'res4': 1/16, 'res5': 1/32}``.

    Task models subclass it and add their head modules, so state-dict keys stay those of the official
    code (``conv1``, ``layer1``, ``transition1``, ``stage2``, ..., then the head). Each names its head's
    top-level modules in ``head_modules`` (timm's ``classifier``), which weight loading asks for.
    """

    #: top-level modules of the task head (none for the bare backbone)
    head_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        m = cfg.norm_layer
        self.conv1 = nn.Conv2d(cfg.in_channels, 64, 3, 2, 1, bias=False)
        self.bn1 = m(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = m(64)
        self.relu = nn.ReLU(inplace=True)

        s1 = cfg.stage1
        self.layer1 = make_layer(BLOCKS[s1.block], 64, s1.num_channels[0], s1.num_blocks[0], norm=m)
        channels = s1.out_channels
        fusing = self._fusing_modules(cfg)
        for k, stage in enumerate(cfg.stages, start=1):
            setattr(self, f"transition{k}", self._make_transition(channels, stage.out_channels, m))
            last_stage = k == len(cfg.stages)
            modules = []
            for idx in range(stage.num_modules):
                last_module = idx == stage.num_modules - 1
                multi = cfg.multi_scale_output or not (last_stage and last_module)
                modules.append(HighResolutionModule(stage, stage.out_channels, cfg,
                                                    multi_scale_output=multi, fuse=(k, idx) in fusing))
            channels = stage.out_channels
            setattr(self, f"stage{k + 1}", nn.Sequential(*modules))
        #: top-level modules of the backbone, in the official names (the head's come after them)
        self.backbone_modules = tuple(name for name, _ in self.named_children())
        last = cfg.stages[-1]
        self.feature_info = [
            FeatureInfo(f"res{b + 2}", c, 4 * 2**b)
            for b, c in enumerate(last.out_channels if cfg.multi_scale_output else last.out_channels[:1])
        ]

    @staticmethod
    def _fusing_modules(cfg: BackboneConfig) -> set[tuple[int, int]]:
        """``(stage, module)`` pairs that fuse: all of them, the last of each stage, or only the very last."""
        every = {(k, i) for k, s in enumerate(cfg.stages, start=1) for i in range(s.num_modules)}
        if cfg.fusion == "within":
            return every
        if cfg.fusion == "across":
            return {(k, s.num_modules - 1) for k, s in enumerate(cfg.stages, start=1)}
        return {(len(cfg.stages), cfg.stages[-1].num_modules - 1)}

    @staticmethod
    def _make_transition(pre: list[int], cur: list[int], norm: NormLayer) -> nn.ModuleList:
        layers = nn.ModuleList()
        for i, c in enumerate(cur):
            if i < len(pre):
                layers.append(conv_bn(pre[i], c, 3, 1, norm, relu=True) if c != pre[i] else None)
            else:  # a new, lower-resolution branch made from the lowest existing one
                steps = [conv_bn(pre[-1], c if s == i - len(pre) else pre[-1], 3, 2, norm, relu=True)
                         for s in range(i + 1 - len(pre))]
                layers.append(nn.Sequential(*steps))
        return layers

    @property
    def num_stages(self) -> int:
        return len(self.cfg.stages)

    @property
    def size_divisibility(self) -> int:
        """Input sides must be multiples of this (detectron2's ``Backbone.size_divisibility``): the stride
        of the lowest-resolution branch when fusion upsamples by powers of two (``nearest``), else 1."""
        if self.cfg.upsample != "nearest":
            return 1
        return 4 * 2 ** (max(s.num_branches for s in self.cfg.stages) - 1)

    @property
    def output_stride(self) -> int:
        """Input pixels per pixel of the model's (highest-resolution) output."""
        return self.feature_info[0].stride

    def forward_stem(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects a batch of {self.cfg.in_channels}-channel images shaped "
                f"(N, {self.cfg.in_channels}, H, W); got a tensor of shape {tuple(x.shape)}"
            )
        stride = self.size_divisibility
        if x.shape[-2] % stride or x.shape[-1] % stride:
            raise ValueError(
                f"input size {tuple(x.shape[-2:])} is not a multiple of {stride}: this model fuses with nearest "
                f"upsampling by powers of two (as the official pose and classification code), which needs it; "
                f"resize or pad the input, or build the model with upsample='bilinear'"
            )
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        return self.layer1(x)

    def forward_branches(self, x: Tensor) -> list[Tensor]:
        """Image -> the outputs of the last stage's branches, highest resolution first."""
        ys = [self.forward_stem(x)]
        for k in range(1, self.num_stages + 1):
            transition = getattr(self, f"transition{k}")
            xs = []
            for i, layer in enumerate(transition):
                src = ys[i] if i < len(ys) else ys[-1]
                xs.append(src if layer is None else layer(src))
            ys = getattr(self, f"stage{k + 1}")(xs)
        return ys

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {f.name: y for f, y in zip(self.feature_info, self.forward_branches(x), strict=True)}

    def output_shape(self) -> dict[str, FeatureInfo]:
        return {f.name: f for f in self.feature_info}
