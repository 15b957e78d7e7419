"""Named presets: ``list_models()`` and ``build_model(name, **overrides)``.

A preset is a task family (pose, pose_higher, seg, seg_ocr, cls, hrnetv2p, hrnetv2), a backbone (width C or a W18-small
variant), head defaults, the paper's figures, and -- as timm's pretrained configs -- the preprocessing its
weights expect: input size, mean and std, and the names of its head modules. A built model carries them
as ``model.pretrained_cfg`` (:meth:`Preset.pretrained_cfg`).
Overrides reach either the backbone (``width``, ``blocks``, ``modules``, ``stage1_blocks``, and the
ablation knobs ``fusion``, ``resolution``, ``downsample``, ``fuse_method``; ``upsample``,
``align_corners``, ``bn_momentum``, ``in_channels``) or the head (``num_joints``, ``num_classes``, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from ..errors import ConfigError, did_you_mean
from ..media import IMAGENET_MEAN, IMAGENET_STD
from .heads import ClsHRNet, HRNetV2, HRNetV2p, PoseHRNet, SegHRNet, SegHRNetOCR
from .higherhrnet import PoseHigherHRNet
from .hrnet import BackboneConfig, backbone_config

__all__ = ["Preset", "PaperFigure", "PRESETS", "list_models", "build_model", "get_preset", "register_preset",
           "make_backbone_config"]

FAMILIES: dict[str, type[nn.Module]] = {
    "pose": PoseHRNet, "seg": SegHRNet, "seg_ocr": SegHRNetOCR, "cls": ClsHRNet, "hrnetv2p": HRNetV2p,
    "hrnetv2": HRNetV2, "pose_higher": PoseHigherHRNet,
}
# Fusion upsampling of the official code of each family (pose/cls: nearest; seg: bilinear to size).
FAMILY_BACKBONE = {
    "pose": {"upsample": "nearest"},
    "cls": {"upsample": "nearest"},
    "seg": {"upsample": "bilinear", "align_corners": False},
    "seg_ocr": {"upsample": "bilinear", "align_corners": True},
    "hrnetv2p": {"upsample": "nearest"},
    "hrnetv2": {"upsample": "bilinear", "align_corners": False},
    "pose_higher": {"upsample": "nearest"},
}
BACKBONE_KEYS = ("width", "small", "blocks", "modules", "stage1_blocks", "resolution", "fusion", "downsample",
                 "fuse_method", "upsample", "align_corners", "bn_momentum", "frozen_bn", "in_channels",
                 "multi_scale_output")


@dataclass(frozen=True)
class PaperFigure:
    """Params (M) and GFLOPs as printed in the paper or the official README, at an input size."""

    input_size: tuple[int, int]
    params: str
    gflops: str
    source: str = ""
    #: multiply-adds per printed GFLOP: 1024**3 in the HRNet papers, 1e9 in the HigherHRNet README
    giga: float = 1024**3


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    width: int
    input_size: tuple[int, int]
    small: str | None = None
    head: dict[str, Any] = field(default_factory=dict)
    paper: tuple[PaperFigure, ...] = ()
    description: str = ""
    #: RGB normalisation of the input (in [0, 1] units) the weights are trained with
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: ``builder(**overrides) -> model`` of a preset outside the HRNet families (the detectors of
    #: ``hrnet.tasks.detection``, registered with :func:`register_preset` when that package is imported)
    builder: Callable[..., nn.Module] | None = None

    @property
    def giga(self) -> float:
        """Multiply-adds per GFLOP in the convention of the preset's published figures."""
        return self.paper[0].giga if self.paper else 1024**3

    @property
    def head_modules(self) -> tuple[str, ...]:
        """The top-level modules of the preset's head (timm's ``classifier``)."""
        return FAMILIES[self.family].head_modules if self.family in FAMILIES else ()

    def pretrained_cfg(self) -> dict[str, Any]:
        """What the weights expect, as timm's ``pretrained_cfg``: input size (H, W), mean, std, head modules."""
        return {"name": self.name, "input_size": self.input_size, "mean": self.mean, "std": self.std,
                "head_modules": self.head_modules}


def _pose(width: int, paper: tuple[PaperFigure, ...]) -> Preset:
    return Preset(f"pose_hrnet_w{width}", "pose", width, (256, 192), paper=paper,
                  description=f"HRNetV1-W{width} top-down pose, COCO 17 keypoints")


def _higher(width: int, size: int, paper: tuple[PaperFigure, ...], suffix: str = "") -> Preset:
    return Preset(f"pose_higherhrnet_w{width}{suffix}", "pose_higher", width, (size, size), paper=paper,
                  description=f"HigherHRNet-W{width} bottom-up pose (associative embedding), COCO 17 keypoints, "
                              f"trained at {size}x{size}")


def _seg(suffix: str, width: int, small: str | None = None, paper: tuple[PaperFigure, ...] = ()) -> Preset:
    return Preset(f"seg_hrnetv2_{suffix}", "seg", width, (1024, 2048), small=small, paper=paper,
                  description=f"HRNetV2-{suffix.upper()} semantic segmentation, Cityscapes 19 classes")


def _cls(suffix: str, width: int, params: str, gflops: str, small: str | None = None) -> Preset:
    fig = (PaperFigure((224, 224), params, gflops, "cls README"),)
    return Preset(f"cls_hrnet_{suffix}", "cls", width, (224, 224), small=small, paper=fig,
                  description=f"HRNet-{suffix.upper()}-C ImageNet classification")


def _det(width: int, paper: tuple[PaperFigure, ...] = ()) -> Preset:
    return Preset(f"hrnetv2p_w{width}", "hrnetv2p", width, (800, 1216), paper=paper,
                  description=f"HRNetV2p-W{width} backbone + HRFPN pyramid for detection")


def _representation(width: int) -> Preset:
    return Preset(f"hrnetv2_w{width}", "hrnetv2", width, (512, 512),
                  description=f"HRNetV2-W{width} stride-4 representation for dense detection heads (CenterNet)")


T1 = "paper Table 1"
HIGHER = "HigherHRNet README"
HIGHER_W32 = (PaperFigure((512, 512), "28.6", "47.9", HIGHER, 1e9),
              PaperFigure((640, 640), "28.6", "74.8", HIGHER, 1e9))
PRESETS: dict[str, Preset] = {p.name: p for p in [
    _pose(32, (PaperFigure((256, 192), "28.5", "7.1", T1), PaperFigure((384, 288), "28.5", "16.0", T1))),
    _pose(48, (PaperFigure((256, 192), "63.6", "14.6", T1), PaperFigure((384, 288), "63.6", "32.9", T1))),
    _higher(32, 512, HIGHER_W32),
    _higher(32, 640, HIGHER_W32[1:], suffix="_640"),
    _higher(48, 640, (PaperFigure((640, 640), "63.8", "154.3", HIGHER, 1e9),)),
    _seg("w18_small_v1", 16, "v1", (PaperFigure((1024, 2048), "1.5", "31.1", "seg README"),)),
    _seg("w18_small_v2", 18, "v2", (PaperFigure((1024, 2048), "3.9", "71.6", "seg README"),)),
    _seg("w18", 18),
    _seg("w32", 32),
    _seg("w40", 40, paper=(PaperFigure((1024, 2048), "45.2", "493.2", "paper Table 3"),)),
    _seg("w48", 48, paper=(PaperFigure((1024, 2048), "65.9", "696.2", "paper Table 3"),)),
    Preset("seg_hrnetv2_w18_ocr", "seg_ocr", 18, (1024, 2048),
           description="HRNetV2-W18 + OCR semantic segmentation, Cityscapes 19 classes"),
    Preset("seg_hrnetv2_w48_ocr", "seg_ocr", 48, (1024, 2048),
           paper=(PaperFigure((1024, 2048), "70.3", "1206.3", "paper Table 3"),),
           description="HRNetV2-W48 + OCR semantic segmentation, Cityscapes 19 classes"),
    _cls("w18_small_v1", 16, "13.2", "1.49", small="v1"),
    _cls("w18_small_v2", 18, "15.6", "2.42", small="v2"),
    _cls("w18", 18, "21.3", "3.99"),
    _cls("w30", 30, "37.7", "7.55"),
    _cls("w32", 32, "41.2", "8.31"),
    _cls("w40", 40, "57.6", "11.8"),
    _cls("w44", 44, "67.1", "13.9"),
    _cls("w48", 48, "77.5", "16.1"),
    _cls("w64", 64, "128.1", "26.9"),
    _det(18), _det(32), _det(40), _det(48),
    _representation(48), _representation(64),
]}


def register_preset(preset: Preset) -> Preset:
    """Add a preset (e.g. one with its own ``builder``) to the registry :func:`build_model` reads."""
    if preset.builder is None and preset.family not in FAMILIES:
        raise ConfigError(f"preset {preset.name!r}: family {preset.family!r} is not one of {sorted(FAMILIES)} "
                          "and the preset has no builder")
    PRESETS[preset.name] = preset
    return preset


def list_models(pattern: str = "") -> list[str]:
    """Preset names, optionally only those containing ``pattern``."""
    return sorted(n for n in PRESETS if pattern in n)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}.{did_you_mean(name, PRESETS)} "
                          f"Known presets: {', '.join(list_models())}.")
    return PRESETS[name]


def make_backbone_config(width: int, small: str | None = None, blocks: int | None = None,
                         modules: tuple[int, ...] | None = None, stage1_blocks: int | None = None,
                         **options: Any) -> BackboneConfig:
    """A :func:`backbone_config` with the depth knobs used for small and ablation models.

    ``blocks``: residual units per branch in stages 2-4; ``modules``: modules of stages 2-4;
    ``stage1_blocks``: Bottlenecks in stage 1.
    """
    cfg = backbone_config(width, small=small, **options)
    stages = list(cfg.stages)
    if blocks is not None:
        stages = [replace(s, num_blocks=(blocks,) * s.num_branches) for s in stages]
    if modules is not None:
        if len(modules) != len(stages):
            raise ConfigError(f"modules={list(modules)} needs one module count per stage ({len(stages)})")
        stages = [replace(s, num_modules=m) for s, m in zip(stages, modules, strict=True)]
    stage1 = cfg.stage1 if stage1_blocks is None else replace(cfg.stage1, num_blocks=(stage1_blocks,))
    return replace(cfg, stage1=stage1, stages=tuple(stages))


def build_model(name: str, weights: str | None = None, **overrides: Any) -> nn.Module:
    """Build the preset ``name``; ``overrides`` change backbone options or head arguments.

    ``weights`` (a path, a URL or a weights-registry name, see ``hrnet weights list``) is loaded with
    :func:`hrnet.load_weights` after building; a registry entry's builder options (its classes, joints,
    ...) are applied first, under ``overrides``.
    """
    from .zoo import WEIGHTS

    if isinstance(weights, str) and weights in WEIGHTS:
        overrides = {**WEIGHTS[weights].overrides, **overrides}
    preset = get_preset(name)
    if preset.builder is not None:
        return _finish(preset.builder(**overrides), preset, weights)
    cls = FAMILIES[preset.family]
    head_keys = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "cfg")]
    unknown = [k for k in overrides if k not in BACKBONE_KEYS and k not in head_keys]
    if unknown:
        valid = [*BACKBONE_KEYS, *head_keys]
        hints = "".join(did_you_mean(k, valid) for k in unknown)
        raise ConfigError(f"unknown option(s) {unknown} for model {name!r}.{hints} Valid options: {', '.join(valid)}.")
    backbone = {"width": preset.width, "small": preset.small, **FAMILY_BACKBONE[preset.family]}
    backbone.update({k: v for k, v in overrides.items() if k in BACKBONE_KEYS})
    head = {**preset.head, **{k: v for k, v in overrides.items() if k in head_keys}}
    if "modules" in backbone and backbone["modules"] is not None:
        backbone["modules"] = tuple(backbone["modules"])
    if "head_channels" in head:
        head["head_channels"] = tuple(head["head_channels"])
    try:
        model = cls(make_backbone_config(**backbone), **head)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"cannot build model {name!r} with {overrides}: {e}") from e
    return _finish(model, preset, weights)


def _finish(model: nn.Module, preset: Preset, weights: str | None) -> nn.Module:
    """Name the preset on the model, give it the preset's ``pretrained_cfg`` and load ``weights``."""
    model.preset = preset.name
    model.pretrained_cfg = preset.pretrained_cfg()
    if weights is not None:
        from .weights import load_weights

        load_weights(model, weights)
    return model
