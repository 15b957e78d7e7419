"""Detectors: an HRNetV2p pyramid inside torchvision's Faster R-CNN, Mask R-CNN, FCOS and RetinaNet, and
Cascade R-CNN, Cascade Mask R-CNN and Hybrid Task Cascade built on torchvision's pieces, and CenterNet on
HRNetV2's stride-4 representation (:mod:`.centernet`).

The RPN, RoI heads, NMS and RoIAlign are torchvision's; this module only chooses the pieces the HRNet
detection code chose:

* two-stage (``faster_rcnn``, ``mask_rcnn``, as HRNet-Object-Detection): the HRFPN pyramid p2-p6
  (strides 4-64), one anchor size per level of 8 x stride (32-512) with ratios 0.5/1/2, RoIAlign
  (sampling ratio 2) on p2-p5 -- 7x7 for the 2-FC (1024) box head, 14x14 for the 4-conv mask head --
  and 2000 RPN proposals before and after NMS both in training and testing.
* cascades (``cascade_rcnn``, ``cascade_mask_rcnn``, ``htc``, as mmdetection's HRNet configs): the same
  pyramid, anchors and RoIAlign, with three box stages (and mask heads, and HTC's semantic branch) of
  :mod:`.cascade` / :mod:`.htc` in place of torchvision's RoI heads.
* one-stage (``fcos``, ``retinanet``, as HRNet-FCOS): the pyramid's 3x3 convs have stride 2, so the
  levels have strides 8-128 as in FCOS/RetinaNet with a ResNet-FPN; FCOS assigns objects by size
  (0-64-128-256-512-inf) without centre sampling, RetinaNet uses 3 scales x 3 ratios of 4 x stride.

Labels follow torchvision's convention for every detector: 0 is the background and the ``K`` object
categories are ``1..K``, so each model has ``K + 1`` classes (the one-stage heads carry one logit for
label 0 that is never a positive).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

from ...errors import ConfigError, did_you_mean
from ...models import build_model
from ...models.complexity import complexity
from ...models.registry import Preset, get_preset, register_preset
from .cascade import CascadeRCNN
from .centernet import CenterNet, build_centernet
from .htc import HybridTaskCascade

__all__ = [
    "Architecture",
    "ARCHITECTURES",
    "BACKBONES",
    "build_detector",
    "list_detectors",
    "split_detector_name",
    "freeze_batchnorm",
    "rpn_anchor_generator",
    "retinanet_anchor_generator",
    "fcos_anchor_generator",
    "roi_align",
    "PAPER_TABLE7",
    "TABLE7_NOTES",
    "table7_input",
    "ParamsRow",
    "trainable_params",
    "paper_params_table",
    "measure_detector",
    "format_params_table",
    "resolve_detector",
]

BACKBONES = ("hrnetv2p_w18", "hrnetv2p_w32", "hrnetv2p_w40", "hrnetv2p_w48")
#: the backbones the paper (and mmdetection's HRNet configs) pair with Cascade Mask R-CNN and HTC
CASCADE_BACKBONES = ("hrnetv2p_w18", "hrnetv2p_w32", "hrnetv2p_w48")
TWO_STAGE_STRIDES = (4, 8, 16, 32, 64)
ONE_STAGE_STRIDES = (8, 16, 32, 64, 128)
ASPECT_RATIOS = (0.5, 1.0, 2.0)
#: the pyramid levels RoIAlign reads (strides 4-32), named as the backbone names them
ROI_LEVELS = ("p2", "p3", "p4", "p5")


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` by ``FrozenBatchNorm2d`` (fixed statistics and affine parameters,
    the paper's "BN parameters fixed"); state-dict keys stay the same, so BN checkpoints still load."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def rpn_anchor_generator(strides: tuple[int, ...] = TWO_STAGE_STRIDES) -> AnchorGenerator:
    """One anchor size per level, 8 x stride (mmdetection ``anchor_scales=[8]``), ratios 0.5/1/2."""
    return AnchorGenerator(tuple((8 * s,) for s in strides), (ASPECT_RATIOS,) * len(strides))


def retinanet_anchor_generator(strides: tuple[int, ...] = ONE_STAGE_STRIDES) -> AnchorGenerator:
    """RetinaNet's anchors: sizes 4 x stride x 2^(0, 1/3, 2/3) per level, ratios 0.5/1/2 (9 per place)."""
    sizes = tuple(tuple(4 * s * 2 ** (k / 3) for k in range(3)) for s in strides)
    return AnchorGenerator(sizes, (ASPECT_RATIOS,) * len(strides))


def fcos_anchor_generator(strides: tuple[int, ...] = ONE_STAGE_STRIDES) -> AnchorGenerator:
    """FCOS is anchor-free: one square 'anchor' of the level's stride marks each location, and
    torchvision derives the per-level object-size ranges (4 x and 8 x that size) from it."""
    return AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))


def roi_align(output_size: int, levels: tuple[str, ...] = ROI_LEVELS) -> MultiScaleRoIAlign:
    """RoIAlign with 2 samples per bin over p2-p5. torchvision's level rule floor(4 + log2(sqrt(wh)/224))
    picks the same level as mmdetection's floor(log2(sqrt(wh)/56)) used by the HRNet configs."""
    return MultiScaleRoIAlign(featmap_names=list(levels), output_size=output_size, sampling_ratio=2)


def _backbone(backbone: str | nn.Module, spec: Architecture, frozen_bn: bool,
              overrides: dict[str, Any]) -> nn.Module:
    """A preset is built with its BN frozen or not and, for one-stage heads, HRNet-FCOS's stride-2
    pyramid (levels p3-p7, strides 8-128), both chosen at construction; a module is used as it is
    (its BatchNorm2d replaced by FrozenBatchNorm2d with ``frozen_bn``)."""
    if isinstance(backbone, str):
        if backbone not in spec.backbones:
            raise ConfigError(f"unknown detection backbone {backbone!r}; known: {list(spec.backbones)}."
                              f"{did_you_mean(backbone, spec.backbones)}")
        pyramid = {"pyramid_stride": 2} if spec.one_stage else {}
        return build_model(backbone, frozen_bn=frozen_bn, **pyramid, **overrides)
    if not hasattr(backbone, "out_channels"):
        raise ConfigError("a detection backbone needs an 'out_channels' attribute; "
                          f"{type(backbone).__name__} has none")
    return freeze_batchnorm(backbone) if frozen_bn else backbone


def _faster_rcnn(backbone: nn.Module, num_classes: int, **options: Any) -> nn.Module:
    defaults = {"rpn_pre_nms_top_n_test": 2000, "rpn_post_nms_top_n_test": 2000}
    return FasterRCNN(backbone, num_classes, rpn_anchor_generator=rpn_anchor_generator(),
                      box_roi_pool=roi_align(7), **{**defaults, **options})


def _mask_rcnn(backbone: nn.Module, num_classes: int, **options: Any) -> nn.Module:
    defaults = {"rpn_pre_nms_top_n_test": 2000, "rpn_post_nms_top_n_test": 2000}
    return MaskRCNN(backbone, num_classes, rpn_anchor_generator=rpn_anchor_generator(),
                    box_roi_pool=roi_align(7), mask_roi_pool=roi_align(14), **{**defaults, **options})


def _cascade_rcnn(backbone: nn.Module, num_classes: int, **options: Any) -> nn.Module:
    """The HRNet cascade configs' test RPN keeps 1000 proposals (torchvision's default), not 2000."""
    return CascadeRCNN(backbone, num_classes, rpn_anchor_generator=rpn_anchor_generator(),
                       box_roi_pool=roi_align(7), **options)


def _cascade_mask_rcnn(backbone: nn.Module, num_classes: int, **options: Any) -> nn.Module:
    return CascadeRCNN(backbone, num_classes, rpn_anchor_generator=rpn_anchor_generator(),
                       box_roi_pool=roi_align(7), mask_roi_pool=roi_align(14), **options)


def _htc(backbone: nn.Module, num_classes: int, **options: Any) -> nn.Module:
    """The HRNet HTC configs keep detections down to score 0.001 (Cascade's: 0.05)."""
    return HybridTaskCascade(backbone, num_classes, rpn_anchor_generator=rpn_anchor_generator(),
                             box_roi_pool=roi_align(7), mask_roi_pool=roi_align(14),
                             **{"box_score_thresh": 0.001, **options})


def _fcos(backbone: nn.Module, num_classes: int, **options: Any) -> nn.Module:
    defaults = {"center_sampling_radius": float("inf"), "score_thresh": 0.05, "nms_thresh": 0.6,
                "detections_per_img": 100, "topk_candidates": 1000}
    return FCOS(backbone, num_classes, anchor_generator=fcos_anchor_generator(), **{**defaults, **options})


def _retinanet(backbone: nn.Module, num_classes: int, **options: Any) -> nn.Module:
    defaults = {"score_thresh": 0.05, "nms_thresh": 0.5, "detections_per_img": 100}
    return RetinaNet(backbone, num_classes, anchor_generator=retinanet_anchor_generator(),
                     **{**defaults, **options})


@dataclass(frozen=True)
class Architecture:
    build: Callable[..., nn.Module]
    #: the torchvision class ``build`` makes, whose constructor takes the detector ``options``
    detector_class: type[nn.Module]
    one_stage: bool
    predicts_masks: bool
    #: the backbone presets this architecture is offered with (``<arch>_<backbone>`` presets)
    backbones: tuple[str, ...] = BACKBONES
    #: whether ``build_detector`` freezes the backbone BN unless told (the recipe of the paper's row)
    frozen_bn: bool = True

    def option_names(self) -> set[str]:
        """The constructor options of ``detector_class`` and its bases (torchvision's detectors swallow
        unknown keywords, so a misspelt option would otherwise be ignored without a word)."""
        names = set()
        for cls in self.detector_class.__mro__:
            if cls in (GeneralizedRCNN, nn.Module):  # built by the subclasses, not options
                break
            names.update(inspect.signature(cls.__init__).parameters)
        return names - {"self", "kwargs", "backbone", "num_classes"}


ARCHITECTURES: dict[str, Architecture] = {
    "faster_rcnn": Architecture(_faster_rcnn, FasterRCNN, one_stage=False, predicts_masks=False),
    "mask_rcnn": Architecture(_mask_rcnn, MaskRCNN, one_stage=False, predicts_masks=True),
    "fcos": Architecture(_fcos, FCOS, one_stage=True, predicts_masks=False),
    "retinanet": Architecture(_retinanet, RetinaNet, one_stage=True, predicts_masks=False),
    "cascade_rcnn": Architecture(_cascade_rcnn, CascadeRCNN, one_stage=False, predicts_masks=False),
    "cascade_mask_rcnn": Architecture(_cascade_mask_rcnn, CascadeRCNN, one_stage=False, predicts_masks=True,
                                      backbones=CASCADE_BACKBONES),
    "htc": Architecture(_htc, HybridTaskCascade, one_stage=False, predicts_masks=True, backbones=CASCADE_BACKBONES),
    # one map at stride 4, no pyramid (one_stage=False: nothing to give stride-2 levels); BN is trained
    "centernet": Architecture(build_centernet, CenterNet, one_stage=False, predicts_masks=False,
                              backbones=("hrnetv2_w48", "hrnetv2_w64"), frozen_bn=False),
}


def list_detectors() -> list[str]:
    """Every ``<architecture>_<backbone>`` preset, e.g. ``faster_rcnn_hrnetv2p_w18``."""
    return [f"{arch}_{backbone}" for arch, spec in ARCHITECTURES.items() for backbone in spec.backbones]


def _register_presets() -> None:
    """Every ``<architecture>_<backbone>`` preset joins the model registry: ``hrnet.build_model(name, ...)``
    builds it with :func:`build_detector`."""
    for name in list_detectors():
        arch, backbone = split_detector_name(name)
        register_preset(Preset(name, "detector", get_preset(backbone).width, table7_input(arch),
                               description=f"{arch} on {backbone}",
                               builder=functools.partial(build_detector, arch, backbone)))


def split_detector_name(name: str) -> tuple[str, str]:
    """``"mask_rcnn_hrnetv2p_w32"`` -> ``("mask_rcnn", "hrnetv2p_w32")``; ``ConfigError`` if unknown."""
    for arch, spec in ARCHITECTURES.items():
        backbone = name.removeprefix(f"{arch}_")
        if backbone != name and backbone in spec.backbones:
            return arch, backbone
    raise ConfigError(f"unknown detector preset {name!r}.{did_you_mean(name, list_detectors())} "
                      f"Known presets: {', '.join(list_detectors())}.")


def resolve_detector(arch: str, backbone: str | nn.Module | None = None) -> tuple[str, str | nn.Module]:
    """``(architecture, backbone)`` from an architecture and a backbone, or from a preset name alone:
    ``("cascade_rcnn_hrnetv2p_w32", None)`` -> ``("cascade_rcnn", "hrnetv2p_w32")``; an architecture
    without a backbone gets its first (``hrnetv2p_w18``; CenterNet: ``hrnetv2_w48``)."""
    if arch in ARCHITECTURES:
        return arch, ARCHITECTURES[arch].backbones[0] if backbone is None else backbone
    if arch in list_detectors():
        if backbone is None:
            return split_detector_name(arch)
        name = backbone if isinstance(backbone, str) else type(backbone).__name__
        raise ConfigError(f"{arch!r} is a preset that names its backbone; give it alone, or give its "
                          f"architecture {split_detector_name(arch)[0]!r} with the backbone {name!r}")
    raise ConfigError(f"unknown detector {arch!r}; known architectures: {list(ARCHITECTURES)}, and the presets "
                      f"of list_detectors().{did_you_mean(arch, [*ARCHITECTURES, *list_detectors()])}")


def build_detector(arch: str, backbone: str | nn.Module | None = None, num_classes: int = 80, *,
                   frozen_bn: bool | None = None, min_size: int = 800, max_size: int = 1333,
                   backbone_overrides: dict[str, Any] | None = None, **options: Any) -> nn.Module:
    """A torchvision detector of architecture ``arch`` on an HRNetV2p backbone (CenterNet: HRNetV2).

    ``arch`` is an architecture (``"cascade_rcnn"``) with ``backbone``, or a preset name alone
    (``"cascade_rcnn_hrnetv2p_w32"``, see :func:`list_detectors`). ``backbone`` is a backbone preset name
    (built with ``hrnet.build_model(backbone, **backbone_overrides)``, e.g. ``{"width": 8}`` for a tiny test
    model; default the architecture's first: ``hrnetv2p_w18``, CenterNet ``hrnetv2_w48``) or a module with
    torchvision's backbone contract.
    ``num_classes`` counts object categories (80 for COCO); the model predicts labels ``1..num_classes``.
    ``min_size``/``max_size`` are the shorter/longer side the model resizes inputs to (CenterNet: ``min_size``
    is the square training input, a multiple of 32); ``options`` go to the detector's constructor (e.g.
    ``box_score_thresh``). ``frozen_bn`` defaults to the architecture's recipe (frozen but for CenterNet).
    The returned model carries ``arch``, ``num_categories`` and ``predicts_masks`` attributes.
    """
    arch, backbone = resolve_detector(arch, backbone)
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
    spec = ARCHITECTURES[arch]
    unknown = sorted(set(options) - spec.option_names())
    if unknown:
        known = spec.option_names() | {"num_classes", "frozen_bn", "backbone_overrides"}
        hints = "".join(did_you_mean(name, known) for name in unknown)
        owner = "torchvision's " if spec.detector_class.__module__.startswith("torchvision") else ""
        raise ConfigError(f"unknown option(s) {unknown} of {owner}{spec.detector_class.__name__}.{hints}")
    frozen_bn = spec.frozen_bn if frozen_bn is None else frozen_bn
    body = _backbone(backbone, spec, frozen_bn, dict(backbone_overrides or {}))
    model = spec.build(body, num_classes + 1, min_size=min_size, max_size=max_size, **options)
    model.arch = arch
    model.num_categories = num_classes
    model.predicts_masks = spec.predicts_masks
    return model


# ------------------------------------------------------------------------------------- paper's Table 7

#: Table 7 of the paper (input 800x1200): framework, backbone, #params as printed, and the unit that
#: row counts in. The Faster R-CNN rows are trainable parameters / 2^20: Table 19's precise values
#: (26.18, 45.04, 79.42) are exactly our counts divided by 2^20; the Mask R-CNN, FCOS, Cascade (Mask)
#: R-CNN and HTC rows are / 10^6 (in 2^20 the cascade rows would be 5 % under the paper's).
PAPER_TABLE7: tuple[tuple[str, str, float, int], ...] = (
    ("faster_rcnn", "hrnetv2p_w18", 26.2, 2**20),
    ("faster_rcnn", "hrnetv2p_w32", 45.0, 2**20),
    ("faster_rcnn", "hrnetv2p_w48", 79.4, 2**20),
    ("mask_rcnn", "hrnetv2p_w18", 30.1, 10**6),
    ("mask_rcnn", "hrnetv2p_w32", 49.9, 10**6),
    ("fcos", "hrnetv2p_w18", 17.5, 10**6),
    ("fcos", "hrnetv2p_w32", 37.3, 10**6),
    ("cascade_rcnn", "hrnetv2p_w18", 55.1, 10**6),
    ("cascade_rcnn", "hrnetv2p_w32", 74.9, 10**6),
    ("cascade_rcnn", "hrnetv2p_w48", 111.0, 10**6),
    ("cascade_mask_rcnn", "hrnetv2p_w18", 63.1, 10**6),
    ("cascade_mask_rcnn", "hrnetv2p_w32", 82.9, 10**6),
    ("cascade_mask_rcnn", "hrnetv2p_w48", 118.9, 10**6),
    ("htc", "hrnetv2p_w18", 66.1, 10**6),
    ("htc", "hrnetv2p_w32", 85.9, 10**6),
    ("htc", "hrnetv2p_w48", 121.9, 10**6),
    ("centernet", "hrnetv2_w48", 73.6, 10**6),
    ("centernet", "hrnetv2_w64", 127.7, 10**6),
)


#: why each framework's count differs from (or equals) the paper's, one line per Table 7 row
TABLE7_NOTES: dict[str, str] = {
    "faster_rcnn": "the paper divides by 2^20: its Table 19 (26.18 / 45.04 / 79.42) is our count / 2^20",
    "mask_rcnn": "in 10^6; the mask head (4 convs, deconv, 1x1: 2.64M) is the same as mmdetection's",
    "fcos": "in 10^6; counting the backbone's BN (trained in HRNet-FCOS, frozen here) gives 17.50 / 37.30; "
            "torchvision's head has no per-level Scale (5) and one label-0 logit more (2,305)",
    "cascade_rcnn": "in 10^6 (in 2^20: 52.5 / 71.4 / 105.8); Faster R-CNN + two more 2-FC stages, all three "
                    "class-agnostic (4 box outputs, not 81 x 4); 0.01-0.08M under the paper's figure",
    "cascade_mask_rcnn": "in 10^6; Cascade R-CNN + three mask heads of 2.64M; the paper's figure is 0.05-0.11M "
                         "higher, which its one-decimal rounding of each row does not explain: not reproducible",
    "htc": "in 10^6; Cascade Mask R-CNN + two 1x1 info-flow convs + the fused semantic head (2.80M, 183 classes); "
           "0.12-0.17M under the paper's figure, as its Cascade Mask R-CNN rows are",
    "centernet": "not reproducible (-3.7 / -3.5 %; GFLOPs too): ours is CenterNet's three 256-wide heads on HRNetV2; "
                 "the paper's 511x511 rows beside HG-52/HG-104 are the keypoint-triplet CenterNet's larger heads",
}

#: the padded input the backbone sees for an 800x1200 image (torchvision pads batches to multiples of 32)
TABLE7_INPUT = (800, 1216)
#: CenterNet's rows are at 511x511, which its (side | 31) + 1 padding makes 512x512
TABLE7_CENTERNET_INPUT = (512, 512)


def table7_input(arch: str) -> tuple[int, int]:
    """The input size of the architecture's Table 7 rows: 800x1200, CenterNet 511x511."""
    return (511, 511) if arch == "centernet" else (800, 1200)


@dataclass(frozen=True)
class ParamsRow:
    """One Table 7 row beside our count (COCO's 80 categories, BN frozen as in the paper) and the
    GFLOPs of our backbone + pyramid at 800x1200 (the heads' cost depends on the proposals)."""

    arch: str
    backbone: str
    paper: float
    params: int
    unit: int
    backbone_gflops: float

    @property
    def ours(self) -> float:
        """Our trainable parameters in the row's unit, comparable with ``paper``."""
        return self.params / self.unit

    @property
    def relative_difference(self) -> float:
        return self.ours / self.paper - 1

    @property
    def note(self) -> str:
        """Why our count reads as it does beside the paper's."""
        return TABLE7_NOTES[self.arch]


def trainable_params(model: nn.Module) -> int:
    """Parameters the optimizer updates (frozen BN statistics and affine terms are buffers)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def paper_params_table() -> list[ParamsRow]:
    """Our detectors' parameter counts beside the paper's Table 7 rows (built on the meta device: no
    memory, no weights; parameters do not depend on the 800x1200 input), with the backbone + pyramid
    GFLOPs (multiply-adds / 1024^3, :func:`hrnet.models.complexity.complexity`) on the padded 800x1216."""
    rows, gflops = [], {}
    for arch, backbone, paper, unit in PAPER_TABLE7:
        pyramid = (backbone, ARCHITECTURES[arch].one_stage)  # what the GFLOPs column depends on
        if pyramid in gflops:
            with torch.device("meta"):
                params = trainable_params(build_detector(arch, backbone, num_classes=80))
        else:
            params, gflops[pyramid] = measure_detector(arch, backbone, num_classes=80)
        rows.append(ParamsRow(arch, backbone, paper, params, unit, gflops[pyramid]))
    return rows


def measure_detector(arch: str, backbone: str | None = None, **options: Any) -> tuple[int, float]:
    """Trainable parameters and backbone + pyramid GFLOPs on the padded 800x1216 input of a detector built
    on the meta device (no memory, no weights); for CenterNet the whole network's GFLOPs at 512x512.
    ``arch`` and ``backbone`` as :func:`build_detector` takes them (``measure_detector("htc_hrnetv2p_w32")``
    or ``measure_detector("htc", "hrnetv2p_w32")``); ``options`` go to it (default 80 categories)."""
    with torch.device("meta"):
        model = build_detector(arch, backbone, **options)
    if isinstance(model, CenterNet):
        return trainable_params(model), model.complexity(TABLE7_CENTERNET_INPUT).gflops
    return trainable_params(model), complexity(model.backbone, TABLE7_INPUT).gflops


def format_params_table(rows: list[ParamsRow]) -> str:
    """A plain-text table of :func:`paper_params_table` for ``hrnet info --detectors``: the paper's figure
    and unit, our count in 10^6 and in 2^20 parameters, the difference in the paper's unit, the backbone +
    pyramid GFLOPs, and under each row why the figures compare as they do."""
    header = (f"{'detector':<30} {'paper (M)':>9} {'unit':>5} {'ours 10^6':>9} {'ours 2^20':>9} {'diff':>6} "
              f"{'GFLOPs':>7}")
    lines = [header, "-" * len(header)]
    for row in rows:
        unit = "2^20" if row.unit == 2**20 else "10^6"
        lines.append(f"{row.arch + '_' + row.backbone:<30} {row.paper:>9.1f} {unit:>5} {row.params / 1e6:>9.2f} "
                     f"{row.params / 2**20:>9.2f} {100 * row.relative_difference:>+5.1f}% "
                     f"{row.backbone_gflops:>7.1f}")
        lines.append(f"    {row.note}")
    lines.append("GFLOPs: backbone + pyramid on an 800x1200 image (padded to 800x1216), multiply-adds / 1024^3; "
                 "CenterNet: the whole network on 511x511 (padded to 512x512).")
    return "\n".join(lines)


_register_presets()
