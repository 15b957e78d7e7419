"""Build a model from an official HRNet experiment config: the migration path from the official repos.

``from_official`` reads the ``MODEL`` section of an official YAML (pose, HigherHRNet, seg, seg-OCR and cls
repositories) and builds the same network with the same state-dict layout, so official checkpoints
load with ``strict=True`` and give the same outputs. Per repository it follows the official code:
pose and HigherHRNet hard-code stage 1 (4 Bottlenecks of 64) and keeps only the high-resolution output of the last
module; pose and cls fuse with nearest upsampling; seg and seg-OCR with bilinear resizing to the exact
target size, ``ALIGN_CORNERS`` defaulting to True as in the HRNet-OCR branch's ``default.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ConfigError, did_you_mean
from ..io import read_structured
from .heads import ClsHRNet, PoseHRNet, SegHRNet, SegHRNetOCR
from .higherhrnet import PoseHigherHRNet
from .hrnet import BackboneConfig, StageConfig

__all__ = ["from_official", "official_backbone_config"]

OFFICIAL_NAMES = {"pose_hrnet": "pose", "pose_higher_hrnet": "pose_higher", "seg_hrnet": "seg",
                  "seg_hrnet_ocr": "seg_ocr", "cls_hrnet": "cls"}
POSE_STAGE1 = StageConfig(1, 1, (4,), (64,), "BOTTLENECK")


def _load_cfg(cfg: str | os.PathLike | Mapping[str, Any]) -> tuple[dict, dict, str]:
    """Return ``(MODEL section, whole config, origin for messages)``."""
    if isinstance(cfg, (str, os.PathLike)):
        path = Path(cfg)
        data = read_structured(path, "official config file", ConfigError, fmt="yaml")
        origin = str(path)
    else:
        data, origin = dict(cfg), "the given config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin}: expected a mapping with a MODEL section")
    model = data.get("MODEL", data)
    if not isinstance(model, Mapping) or "NAME" not in model:
        raise ConfigError(f"{origin}: no MODEL.NAME; expected one of {sorted(OFFICIAL_NAMES)}")
    return dict(model), dict(data), origin


def _stage(extra: Mapping, key: str, origin: str) -> StageConfig:
    if key not in extra:
        raise ConfigError(f"{origin}: MODEL.EXTRA.{key} is missing")
    s = extra[key]
    try:
        fuse = str(s.get("FUSE_METHOD", "SUM")).upper()
        if fuse != "SUM":
            raise ConfigError(f"{origin}: MODEL.EXTRA.{key}.FUSE_METHOD={fuse!r}; the official code only has SUM")
        return StageConfig(
            num_modules=int(s.get("NUM_MODULES", 1)),
            num_branches=int(s.get("NUM_BRANCHES", len(s["NUM_CHANNELS"]))),
            num_blocks=tuple(int(b) for b in s["NUM_BLOCKS"]),
            num_channels=tuple(int(c) for c in s["NUM_CHANNELS"]),
            block=str(s.get("BLOCK", "BASIC")).upper(),
        )
    except KeyError as e:
        raise ConfigError(f"{origin}: MODEL.EXTRA.{key}.{e.args[0]} is missing") from e
    except ValueError as e:
        raise ConfigError(f"{origin}: MODEL.EXTRA.{key}: {e}") from e


def official_backbone_config(cfg: str | os.PathLike | Mapping[str, Any], **options: Any) -> BackboneConfig:
    """The :class:`BackboneConfig` of an official config (``options`` override backbone fields)."""
    model, _, origin = _load_cfg(cfg)
    family = _family(model, origin)
    extra = model.get("EXTRA") or {}
    stage1 = POSE_STAGE1 if family in ("pose", "pose_higher") else _stage(extra, "STAGE1", origin)
    stages = tuple(_stage(extra, f"STAGE{k}", origin) for k in (2, 3, 4))
    defaults: dict[str, Any] = {"upsample": "nearest", "align_corners": False}
    if family in ("seg", "seg_ocr"):
        defaults = {"upsample": "bilinear", "align_corners": bool(model.get("ALIGN_CORNERS", True))}
    return BackboneConfig(stage1=stage1, stages=stages, **{**defaults, **options})


def _family(model: Mapping, origin: str) -> str:
    name = str(model["NAME"])
    if name not in OFFICIAL_NAMES:
        raise ConfigError(f"{origin}: MODEL.NAME={name!r} is not an official HRNet model."
                          f"{did_you_mean(name, OFFICIAL_NAMES)} Expected one of {sorted(OFFICIAL_NAMES)}.")
    return OFFICIAL_NAMES[name]


def _higher_head(model: Mapping, whole: Mapping, origin: str) -> dict[str, Any]:
    """HigherHRNet's head arguments from ``MODEL`` (joints, tags, ``EXTRA.DECONV``) and ``LOSS.WITH_AE_LOSS``
    (which outputs carry tag maps; the official default when absent: the first only)."""
    extra = model.get("EXTRA") or {}
    deconv = extra.get("DECONV")
    if not isinstance(deconv, Mapping):
        raise ConfigError(f"{origin}: MODEL.EXTRA.DECONV is missing (HigherHRNet's deconvolution modules)")
    try:
        n = int(deconv["NUM_DECONVS"])
        head: dict[str, Any] = {
            "num_joints": int(model.get("NUM_JOINTS", 17)),
            "tag_per_joint": bool(model.get("TAG_PER_JOINT", True)),
            "deconv_channels": [int(c) for c in deconv["NUM_CHANNELS"][:n]],
            "deconv_kernels": [int(k) for k in deconv["KERNEL_SIZE"][:n]],
            "num_basic_blocks": int(deconv["NUM_BASIC_BLOCKS"]),
            "cat_output": [bool(c) for c in deconv["CAT_OUTPUT"][:n]],
            "final_conv_kernel": int(extra.get("FINAL_CONV_KERNEL", 1)),
        }
    except KeyError as e:
        raise ConfigError(f"{origin}: MODEL.EXTRA.DECONV.{e.args[0]} is missing") from e
    with_ae = (whole.get("LOSS") or {}).get("WITH_AE_LOSS")
    head["with_ae"] = [True] + [False] * n if with_ae is None else [bool(a) for a in with_ae][: n + 1]
    return head


BACKBONE_OPTIONS = ("upsample", "align_corners", "bn_momentum", "fusion", "downsample", "fuse_method", "in_channels")


def from_official(cfg: str | os.PathLike | Mapping[str, Any], checkpoint: str | os.PathLike | None = None,
                  **overrides: Any) -> nn.Module:
    """Build the model of an official experiment config, optionally loading an official checkpoint.

    ``cfg`` is the path of an official YAML (e.g. ``experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml``,
    or HigherHRNet's ``experiments/coco/higher_hrnet/w32_512_adam_lr1e-3.yaml``) or a dict holding its
    ``MODEL`` section (or the whole config). The number of outputs comes from ``MODEL.NUM_JOINTS`` (pose,
    HigherHRNet, whose tag maps follow ``MODEL.TAG_PER_JOINT`` and ``LOSS.WITH_AE_LOSS``) or
    ``DATASET.NUM_CLASSES`` / ``MODEL.NUM_CLASSES`` (seg, cls).
    ``overrides`` reach the model builder: backbone options (``align_corners``, ``bn_momentum``, ...) and
    head arguments (``num_classes``, cls ``head_channels`` / ``final_channels``, OCR channels, ...).
    ``checkpoint`` is loaded strictly with :func:`hrnet.load_weights`.
    """
    model_cfg, whole, origin = _load_cfg(cfg)
    family = _family(model_cfg, origin)
    backbone_options = {k: overrides.pop(k) for k in list(overrides) if k in BACKBONE_OPTIONS}
    backbone = official_backbone_config(cfg if not isinstance(cfg, Mapping) else whole, **backbone_options)
    extra = model_cfg.get("EXTRA") or {}
    num_classes = model_cfg.get("NUM_CLASSES", (whole.get("DATASET") or {}).get("NUM_CLASSES"))
    head: dict[str, Any]
    if family == "pose":
        head = {"num_joints": int(model_cfg.get("NUM_JOINTS", 17)),
                "final_conv_kernel": int(extra.get("FINAL_CONV_KERNEL", 1))}
        cls: type[nn.Module] = PoseHRNet
    elif family == "pose_higher":
        head = _higher_head(model_cfg, whole, origin)
        cls = PoseHigherHRNet
    elif family == "seg":
        head = {"num_classes": int(num_classes or 19), "final_conv_kernel": int(extra.get("FINAL_CONV_KERNEL", 1))}
        cls = SegHRNet
    elif family == "seg_ocr":
        ocr = model_cfg.get("OCR") or {}
        head = {"num_classes": int(num_classes or 19), "ocr_mid_channels": int(ocr.get("MID_CHANNELS", 512)),
                "ocr_key_channels": int(ocr.get("KEY_CHANNELS", 256))}
        cls = SegHRNetOCR
    else:
        head = {"num_classes": int(num_classes or 1000)}
        cls = ClsHRNet
    head.update(overrides)
    try:
        model = cls(backbone, **head)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{origin}: cannot build {model_cfg['NAME']} with overrides {overrides}: {e}") from e
    if checkpoint is not None:
        from .weights import load_weights

        load_weights(model, checkpoint, strict=True)
    return model
