"""HRNet task models: the backbone of ``hrnet.py`` plus one representation head each.

- :class:`PoseHRNet`     HRNetV1: high-resolution branch -> 1x1 conv to K heatmaps (1/4 resolution).
- :class:`SegHRNet`      HRNetV2: all branches upsampled and concatenated (15C) -> 1x1 conv-BN-ReLU -> classifier.
- :class:`SegHRNetOCR`   HRNetV2 + object-contextual representations (soft object regions, spatial gather,
                         object attention), returning ``[aux_logits, logits]`` as the official code.
- :class:`ClsHRNet`      HRNet-C: per-branch Bottlenecks widening to 128/256/512/1024, strided merging,
                         1x1 to 2048, global pooling, linear classifier.
- :class:`HRNetV2p`      HRNetV2 -> HRFPN pyramid (5 levels, strides 4..64) for torchvision detectors.
- :class:`HRNetV2`       HRNetV2's stride-4 representation (concatenation mixed by 1x1 conv-BN-ReLU) for
                         dense heads such as CenterNet's.

Each subclasses :class:`~hrnet.models.hrnet.HighResolutionNet` and adds its head under the official
attribute names, so the state dict has exactly the official keys. Pose and segmentation also take
``representation='v1' | 'v1h' | 'v2'`` (the paper's Fig. 10 ablation).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .hrnet import BackboneConfig, Bottleneck, HighResolutionNet, batch_norm, conv_bn, make_layer

__all__ = ["PoseHRNet", "SegHRNet", "SegHRNetOCR", "ClsHRNet", "HRFPN", "HRNetV2p", "HRNetV2", "upsample_concat"]

Representation = Literal["v1", "v1h", "v2"]


def upsample_concat(xs: list[Tensor], align_corners: bool | None = False) -> Tensor:
    """HRNetV2's representation: every branch bilinearly resized to the first and concatenated."""
    size = xs[0].shape[-2:]
    ups = [F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners) for x in xs[1:]]
    return torch.cat([xs[0], *ups], dim=1)


def init_official(model: nn.Module, scheme: Literal["normal", "kaiming"], conv_bias_zero: bool = False,
                  skip: tuple[str, ...] = ()) -> None:
    """The official initialisation: N(0, 0.001) convs and transposed convs (pose, seg) or Kaiming fan-out
    (cls); BN = (1, 0).

    Modules whose name contains one of ``skip`` keep PyTorch's default (the OCR heads do).
    """
    for name, m in model.named_modules():
        if any(s in name for s in skip):
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            if scheme == "normal":
                nn.init.normal_(m.weight, std=0.001)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if conv_bias_zero and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class _RepresentationMixin:
    """Builds the V1 / V1h / V2 representation on top of the branch outputs."""

    def _make_representation(self, kind: Representation, branch: int = 0) -> int:
        channels = self.cfg.out_channels
        if kind not in ("v1", "v1h", "v2"):
            raise ValueError(f"representation={kind!r}: expected 'v1', 'v1h' or 'v2'")
        if not 0 <= branch < len(channels) or (branch and kind != "v1"):
            raise ValueError(f"branch={branch} must index one of the {len(channels)} branches "
                             "(with representation='v1')")
        self.representation, self.branch = kind, branch
        if kind == "v1h":  # V1 widened by a 1x1 conv to V2's width (paper Sec. 4.5)
            self.increase = conv_bn(channels[0], sum(channels), 1, 1, batch_norm(self.cfg.bn_momentum), relu=True)
        return {"v1": channels[branch], "v1h": sum(channels), "v2": sum(channels)}[kind]

    def _represent(self, xs: list[Tensor]) -> Tensor:
        if self.representation == "v2":
            return upsample_concat(xs, self.cfg.align_corners)
        if self.representation == "v1h":
            return self.increase(xs[0])
        return xs[self.branch]


class PoseHRNet(_RepresentationMixin, HighResolutionNet):
    """HRNetV1 for top-down pose: ``(N, 3, H, W) -> (N, K, H/4, W/4)`` heatmaps.

    ``branch=k`` predicts from the k-th branch instead (resolution 1/(4*2^k); the paper's Fig. 9).
    """

    head_modules = ("increase", "final_layer")

    def __init__(self, cfg: BackboneConfig, num_joints: int = 17, final_conv_kernel: int = 1,
                 representation: Representation = "v1", branch: int = 0) -> None:
        # The official pose model keeps only the high-resolution output of the last module.
        super().__init__(replace(cfg, multi_scale_output=representation != "v1" or branch != 0))
        in_channels = self._make_representation(representation, branch)
        self.final_layer = nn.Conv2d(in_channels, num_joints, final_conv_kernel, 1, final_conv_kernel // 2)
        self.num_joints = num_joints
        init_official(self, "normal", conv_bias_zero=True)

    @property
    def output_stride(self) -> int:
        return 4 * 2**self.branch

    def forward(self, x: Tensor) -> Tensor:
        return self.final_layer(self._represent(self.forward_branches(x)))


class SegHRNet(_RepresentationMixin, HighResolutionNet):
    """HRNetV2 for semantic segmentation: ``(N, 3, H, W) -> (N, K, H/4, W/4)`` logits."""

    head_modules = ("increase", "last_layer")

    def __init__(self, cfg: BackboneConfig, num_classes: int = 19, final_conv_kernel: int = 1,
                 representation: Representation = "v2") -> None:
        super().__init__(cfg)
        channels = self._make_representation(representation)
        self.last_layer = nn.Sequential(
            nn.Conv2d(channels, channels, 1),
            nn.BatchNorm2d(channels, momentum=cfg.bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, num_classes, final_conv_kernel, 1, final_conv_kernel // 2),
        )
        self.num_classes = num_classes
        init_official(self, "normal")

    def forward(self, x: Tensor) -> Tensor:
        return self.last_layer(self._represent(self.forward_branches(x)))


def conv1x1_bn_relu(cin: int, cout: int, bn_momentum: float) -> list[nn.Module]:
    """1x1 conv (no bias) then ``Sequential(BN, ReLU)``: the OCR code's ``BNReLU`` key layout."""
    return [nn.Conv2d(cin, cout, 1, bias=False),
            nn.Sequential(nn.BatchNorm2d(cout, momentum=bn_momentum), nn.ReLU(inplace=True))]


class SpatialGather(nn.Module):
    """Object-region representations: pixel features averaged with spatial-softmax region weights.

    ``feats (N, C, H, W)``, ``probs (N, K, H, W)`` -> ``(N, C, K, 1)``.
    """

    def forward(self, feats: Tensor, probs: Tensor) -> Tensor:
        weights = F.softmax(probs.flatten(2), dim=2)  # N x K x HW
        regions = torch.matmul(weights, feats.flatten(2).transpose(1, 2))  # N x K x C
        return regions.transpose(1, 2).unsqueeze(3)


class ObjectAttention(nn.Module):
    """Pixel-region relations: each pixel attends to the K object regions (scaled dot product)."""

    def __init__(self, channels: int, key_channels: int, bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.key_channels = key_channels
        self.f_pixel = nn.Sequential(*conv1x1_bn_relu(channels, key_channels, bn_momentum),
                                     *conv1x1_bn_relu(key_channels, key_channels, bn_momentum))
        self.f_object = nn.Sequential(*conv1x1_bn_relu(channels, key_channels, bn_momentum),
                                      *conv1x1_bn_relu(key_channels, key_channels, bn_momentum))
        self.f_down = nn.Sequential(*conv1x1_bn_relu(channels, key_channels, bn_momentum))
        self.f_up = nn.Sequential(*conv1x1_bn_relu(key_channels, channels, bn_momentum))

    def forward(self, x: Tensor, regions: Tensor) -> Tensor:
        n, _, h, w = x.shape
        query = self.f_pixel(x).flatten(2).transpose(1, 2)  # N x HW x key
        key = self.f_object(regions).flatten(2)  # N x key x K
        value = self.f_down(regions).flatten(2).transpose(1, 2)  # N x K x key
        sim = F.softmax(torch.matmul(query, key) * self.key_channels**-0.5, dim=-1)
        context = torch.matmul(sim, value).transpose(1, 2).reshape(n, self.key_channels, h, w)
        return self.f_up(context)


class SpatialOCR(nn.Module):
    """Augments every pixel with its object context: ``conv1x1(cat[context, feats])`` + dropout."""

    def __init__(self, channels: int, key_channels: int, out_channels: int, dropout: float = 0.05,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.object_context_block = ObjectAttention(channels, key_channels, bn_momentum)
        self.conv_bn_dropout = nn.Sequential(*conv1x1_bn_relu(2 * channels, out_channels, bn_momentum),
                                             nn.Dropout2d(dropout))

    def forward(self, feats: Tensor, regions: Tensor) -> Tensor:
        context = self.object_context_block(feats, regions)
        return self.conv_bn_dropout(torch.cat([context, feats], dim=1))


class SegHRNetOCR(HighResolutionNet):
    """HRNetV2 + OCR: returns ``[aux_logits, logits]``, both ``(N, K, H/4, W/4)`` (use the last)."""

    head_modules = ("conv3x3_ocr", "ocr_gather_head", "ocr_distri_head", "cls_head", "aux_head")

    def __init__(self, cfg: BackboneConfig, num_classes: int = 19, ocr_mid_channels: int = 512,
                 ocr_key_channels: int = 256, dropout: float = 0.05) -> None:
        super().__init__(cfg)
        channels, m = sum(cfg.out_channels), cfg.bn_momentum
        self.conv3x3_ocr = nn.Sequential(nn.Conv2d(channels, ocr_mid_channels, 3, 1, 1),
                                         nn.BatchNorm2d(ocr_mid_channels, momentum=m), nn.ReLU(inplace=True))
        self.ocr_gather_head = SpatialGather()
        self.ocr_distri_head = SpatialOCR(ocr_mid_channels, ocr_key_channels, ocr_mid_channels, dropout, m)
        self.cls_head = nn.Conv2d(ocr_mid_channels, num_classes, 1)
        self.aux_head = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels, momentum=m),
                                      nn.ReLU(inplace=True), nn.Conv2d(channels, num_classes, 1))
        self.num_classes = num_classes
        init_official(self, "normal", skip=("cls", "aux", "ocr"))

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = upsample_concat(self.forward_branches(x), self.cfg.align_corners)
        aux = self.aux_head(feats)
        feats = self.conv3x3_ocr(feats)
        feats = self.ocr_distri_head(feats, self.ocr_gather_head(feats, aux))
        return [aux, self.cls_head(feats)]


class ClsHRNet(HighResolutionNet):
    """HRNet-W*-C for ImageNet: ``(N, 3, H, W) -> (N, num_classes)`` logits."""

    head_modules = ("incre_modules", "downsamp_modules", "final_layer", "classifier")

    def __init__(self, cfg: BackboneConfig, num_classes: int = 1000,
                 head_channels: tuple[int, ...] = (32, 64, 128, 256), final_channels: int = 2048) -> None:
        super().__init__(cfg)
        m, branches = cfg.bn_momentum, cfg.out_channels
        if len(head_channels) < len(branches):
            raise ValueError(f"head_channels={list(head_channels)} needs one width per branch ({len(branches)})")
        wide = [c * Bottleneck.expansion for c in head_channels[: len(branches)]]
        self.incre_modules = nn.ModuleList(
            make_layer(Bottleneck, c, h, 1, norm=batch_norm(m)) for c, h in zip(branches, head_channels, strict=False))
        self.downsamp_modules = nn.ModuleList(
            nn.Sequential(nn.Conv2d(wide[i], wide[i + 1], 3, 2, 1), nn.BatchNorm2d(wide[i + 1], momentum=m),
                          nn.ReLU(inplace=True))
            for i in range(len(wide) - 1))
        self.final_layer = nn.Sequential(nn.Conv2d(wide[-1], final_channels, 1),
                                         nn.BatchNorm2d(final_channels, momentum=m), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(final_channels, num_classes)
        self.num_classes = num_classes
        init_official(self, "kaiming")

    def forward_head(self, xs: list[Tensor]) -> Tensor:
        y = self.incre_modules[0](xs[0])
        for i, down in enumerate(self.downsamp_modules):
            y = self.incre_modules[i + 1](xs[i + 1]) + down(y)
        y = self.final_layer(y)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_branches(x))


class HRFPN(nn.Module):
    """HRNetV2p's pyramid: concat of upsampled branches -> 1x1 conv -> pooled levels -> 3x3 conv each
    (``conv_stride=2``: HRNet-FCOS's stride-2 3x3 convs, for one-stage heads)."""

    def __init__(self, in_channels: list[int], out_channels: int = 256, num_levels: int = 5,
                 pooling: Literal["avg", "max"] = "avg", conv_stride: int = 1) -> None:
        super().__init__()
        self.reduction_conv = nn.Conv2d(sum(in_channels), out_channels, 1)
        self.fpn_convs = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, conv_stride, 1)
                                       for _ in range(num_levels))
        self.pool = F.avg_pool2d if pooling == "avg" else F.max_pool2d
        for conv in [self.reduction_conv, *self.fpn_convs]:  # mmdetection's caffe2 Xavier init
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        x = self.reduction_conv(upsample_concat(xs, align_corners=False))
        levels = [x] + [self.pool(x, kernel_size=2**i, stride=2**i) for i in range(1, len(self.fpn_convs))]
        return [conv(level) for conv, level in zip(self.fpn_convs, levels, strict=True)]


class HRNetV2p(HighResolutionNet):
    """Backbone + HRFPN with torchvision's backbone contract: ``out_channels`` and an ``OrderedDict``
    ``{'p2': 1/4, 'p3': 1/8, 'p4': 1/16, 'p5': 1/32, 'p6': 1/64}`` of ``out_channels``-wide maps; with
    ``pyramid_stride=2`` (HRNet-FCOS) the levels are ``p3``-``p7``, strides 8-128. ``strides`` states them."""

    head_modules = ("neck",)

    def __init__(self, cfg: BackboneConfig, out_channels: int = 256, num_levels: int = 5,
                 pooling: Literal["avg", "max"] = "avg", pyramid_stride: Literal[1, 2] = 1) -> None:
        super().__init__(cfg)
        if pyramid_stride not in (1, 2):
            raise ValueError(f"pyramid_stride must be 1 or 2, got {pyramid_stride!r}")
        self.neck = HRFPN(cfg.out_channels, out_channels, num_levels, pooling, conv_stride=pyramid_stride)
        self.out_channels = out_channels
        self.strides = tuple(4 * pyramid_stride * 2**i for i in range(num_levels))
        self.level_names = [f"p{s.bit_length() - 1}" for s in self.strides]
        init_official(self, "normal", skip=("neck",))

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return OrderedDict(zip(self.level_names, self.neck(self.forward_branches(x)), strict=True))


class HRNetV2(HighResolutionNet):
    """HRNetV2's high-resolution representation: ``(N, 3, H, W) -> (N, 15C, H/4, W/4)``.

    All branches bilinearly upsampled to stride 4 and concatenated, then mixed by the segmentation
    head's 1x1 conv-BN-ReLU (``last_layer``, the same keys as :class:`SegHRNet` without its classifier),
    so dense prediction heads sit on one map; ``out_channels`` is its width.
    """

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__(cfg)
        channels = sum(cfg.out_channels)
        self.last_layer = nn.Sequential(
            nn.Conv2d(channels, channels, 1),
            nn.BatchNorm2d(channels, momentum=cfg.bn_momentum),
            nn.ReLU(inplace=True),
        )
        self.out_channels = channels
        init_official(self, "normal")

    def forward(self, x: Tensor) -> Tensor:
        return self.last_layer(upsample_concat(self.forward_branches(x), self.cfg.align_corners))
