"""Whole OpenMMLab checkpoints (mmpose, mmsegmentation, mmdetection) in hrnet's models.

OpenMMLab's HRNet backbone keeps the official module names under ``backbone.``; what differs are the
heads, whose layouts are mapped here onto ours, tensor by tensor:

* mmpose top-down heatmap head (``keypoint_head.final_layer`` in 0.x, ``head.final_layer`` in 1.x) ->
  :class:`~hrnet.models.heads.PoseHRNet`'s ``final_layer``; mmpose 0.x ``AEHigherResolutionHead``
  (``keypoint_head.final_layers`` / ``deconv_layers``, the official HigherHRNet layout) ->
  :class:`~hrnet.models.higherhrnet.PoseHigherHRNet`'s modules of the same names;
* mmsegmentation ``FCNHead`` (one 1x1 ``ConvModule`` + ``conv_seg``) -> :class:`SegHRNet`'s ``last_layer``,
  and ``CascadeEncoderDecoder``'s ``[FCNHead, OCRHead]`` -> :class:`SegHRNetOCR`'s ``aux_head`` and OCR
  modules (``bottleneck`` -> ``conv3x3_ocr``; ``query/key/value/out_project`` -> ``f_pixel/f_object/f_down/f_up``;
  the attention block's ``bottleneck`` -> ``conv_bn_dropout``; ``conv_seg`` -> ``cls_head``);
* mmdetection ``HRFPN`` -> the backbone's ``neck``; ``RPNHead`` (``rpn_conv``/``rpn_cls``/``rpn_reg``,
  sigmoid objectness, one logit per anchor) -> torchvision's ``rpn.head``; ``Shared2FCBBoxHead`` ->
  ``roi_heads.box_head.fc6/fc7`` + ``box_predictor``, with the classes reordered (mmdetection 2.x puts
  the background last, torchvision first) and a zero background box regressor; ``FCNMaskHead`` ->
  ``roi_heads.mask_head`` + ``mask_predictor``; ``FCOSHead`` -> torchvision's FCOS head.

``ConvModule`` convolutions followed by a norm have no bias where ours have one: the bias is filled
with zeros, which computes the same. Every file tensor is either placed, or skipped for a stated
reason (training-only auxiliary heads, frozen-BN counters); anything else is an error listing the
tensors that have no place in the model, so a checkpoint of another architecture never half-loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import CheckpointError

__all__ = ["is_openmmlab", "convert_openmmlab", "cascade_stage_prefixes"]

MM_HEAD_PREFIXES = ("keypoint_head.", "head.final_layer.", "decode_head.", "auxiliary_head.", "neck.", "rpn_head.",
                    "roi_head.", "bbox_head.", "mask_head.")
#: the label-0 logit our one-stage heads carry beside mmdetection's classes: never a detection
NEVER_LOGIT = -20.0
SHOW = 10

Transform = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Rule:
    """File keys matching ``pattern`` go to ``target`` (a template on the match's groups)."""

    pattern: str
    target: str
    transform: Transform | None = None
    #: the file's convolution has no bias (``ConvModule`` before a norm): the model's bias gets zeros
    bias_free: bool = False


def is_openmmlab(state: Mapping[str, Tensor], model_keys: Mapping[str, Tensor] | set[str]) -> bool:
    """Whether ``state`` is a whole OpenMMLab model (an HRNet ``backbone.`` and an OpenMMLab head) that is
    not already in the model's layout."""
    keys = set(state)
    if keys <= set(model_keys) or _model_kind(set(model_keys)) is None:
        return False
    return any(k.startswith("backbone.") for k in keys) and any(k.startswith(MM_HEAD_PREFIXES) for k in keys)


def cascade_stage_prefixes(stage: int) -> tuple[str, str]:
    """Where stage ``stage`` of a cascade RoI head (mmdetection ``roi_head.bbox_head.<stage>``) lives in our
    model: ``(box head prefix, box predictor prefix)``."""
    return f"roi_heads.stages.{stage}.box_head.", f"roi_heads.stages.{stage}.box_predictor."


# ------------------------------------------------------------------------------------ tensor transforms


def _background_first(src: Tensor, dst: Tensor) -> Tensor:
    """mmdetection 2.x classifier rows ``[c1..cK, background]`` -> torchvision's ``[background, c1..cK]``."""
    return torch.cat([src[-1:], src[:-1]]) if src.shape == dst.shape else src


def _with_background_rows(rows: int) -> Transform:
    """Per-class rows without a background (``rows`` per class) -> zero background rows first; a
    class-agnostic regressor (one set of rows) is repeated for every class, which predicts the same."""
    def transform(src: Tensor, dst: Tensor) -> Tensor:
        if src.shape[0] + rows == dst.shape[0]:
            return torch.cat([src.new_zeros((rows, *src.shape[1:])), src])
        if src.shape[0] == rows and dst.shape[0] % rows == 0:
            return src.repeat(dst.shape[0] // rows, *([1] * (src.ndim - 1)))
        return src
    return transform


def _never_label_zero(src: Tensor, dst: Tensor) -> Tensor:
    """FCOS classes 1..K from mmdetection's K sigmoid logits; label 0 gets a logit that never fires."""
    if src.shape[0] + 1 != dst.shape[0]:
        return src
    extra = src.new_full((1,), NEVER_LOGIT) if src.ndim == 1 else src.new_zeros((1, *src.shape[1:]))
    return torch.cat([extra, src])


# ------------------------------------------------------------------------------------------------ rules

def _conv_module(src: str, conv: str, norm: str, norm_name: str = "bn") -> list[Rule]:
    """A ``ConvModule`` (conv without bias + norm) at ``src`` -> our conv ``conv`` and norm ``norm``."""
    return [Rule(rf"{src}\.conv\.weight", f"{conv}.weight", bias_free=True),
            Rule(rf"{src}\.{norm_name}\.(.+)", norm + r".\1")]


def _pose_rules() -> list[Rule]:
    return [Rule(r"(?:keypoint_head|head)\.final_layer\.(weight|bias)", r"final_layer.\1")]


def _pose_higher_rules() -> list[Rule]:
    return [Rule(r"keypoint_head\.((?:final|deconv)_layers\..+)", r"\1")]


def _fcn_rules(src: str, dst: str) -> list[Rule]:
    """mmsegmentation FCNHead (``num_convs=1``, 1x1, no ``concat_input``) -> ``Sequential(conv, BN, ReLU, conv)``."""
    return [*_conv_module(rf"{src}\.convs\.0", f"{dst}.0", f"{dst}.1"),
            Rule(rf"{src}\.conv_seg\.(weight|bias)", dst + r".3.\1")]


def _ocr_rules() -> list[Rule]:
    ocr, block = r"decode_head\.1", r"decode_head\.1\.object_context_block"
    ours = "ocr_distri_head.object_context_block"
    rules = [*_fcn_rules(r"decode_head\.0", "aux_head"),
             *_conv_module(rf"{ocr}\.bottleneck", "conv3x3_ocr.0", "conv3x3_ocr.1"),
             Rule(rf"{ocr}\.conv_seg\.(weight|bias)", r"cls_head.\1"),
             *_conv_module(rf"{block}\.value_project", f"{ours}.f_down.0", f"{ours}.f_down.1.0"),
             *_conv_module(rf"{block}\.out_project", f"{ours}.f_up.0", f"{ours}.f_up.1.0"),
             *_conv_module(rf"{block}\.bottleneck", "ocr_distri_head.conv_bn_dropout.0",
                           "ocr_distri_head.conv_bn_dropout.1.0")]
    for theirs, mine in (("query_project", "f_pixel"), ("key_project", "f_object")):
        for i in (0, 1):
            rules += _conv_module(rf"{block}\.{theirs}\.{i}", f"{ours}.{mine}.{2 * i}", f"{ours}.{mine}.{2 * i + 1}.0")
    return rules


def _neck_rules() -> list[Rule]:
    return [Rule(r"neck\.reduction_conv\.conv\.(weight|bias)", r"backbone.neck.reduction_conv.\1"),
            Rule(r"neck\.fpn_convs\.(\d+)\.conv\.(weight|bias)", r"backbone.neck.fpn_convs.\1.\2")]


def _box_head_rules(src: str, box_head: str, predictor: str, background_last: bool) -> list[Rule]:
    """``Shared2FCBBoxHead`` at ``src`` -> a torchvision ``TwoMLPHead`` + ``FastRCNNPredictor``."""
    cls = _background_first if background_last else None
    reg = _with_background_rows(4)
    return [Rule(rf"{src}\.shared_fcs\.0\.(weight|bias)", box_head + r"fc6.\1"),
            Rule(rf"{src}\.shared_fcs\.1\.(weight|bias)", box_head + r"fc7.\1"),
            Rule(rf"{src}\.fc_cls\.(weight|bias)", predictor + r"cls_score.\1", cls),
            Rule(rf"{src}\.fc_reg\.(weight|bias)", predictor + r"bbox_pred.\1", reg)]


def _two_stage_rules(state: Mapping[str, Tensor]) -> list[Rule]:
    v2 = any(k.startswith("roi_head.") for k in state)  # mmdetection 2.x: background last
    roi = r"roi_head\." if v2 else ""
    stages = sorted({int(m.group(1)) for k in state if (m := re.match(rf"{roi}bbox_head\.(\d+)\.", k))})
    rules = [*_neck_rules(),
             Rule(r"rpn_head\.rpn_conv\.(weight|bias)", r"rpn.head.conv.0.0.\1"),
             Rule(r"rpn_head\.rpn_cls\.(weight|bias)", r"rpn.head.cls_logits.\1"),
             Rule(r"rpn_head\.rpn_reg\.(weight|bias)", r"rpn.head.bbox_pred.\1"),
             *_box_head_rules(rf"{roi}bbox_head", "roi_heads.box_head.", "roi_heads.box_predictor.", v2),
             Rule(rf"{roi}mask_head\.convs\.(\d+)\.conv\.(weight|bias)", r"roi_heads.mask_head.\1.0.\2"),
             Rule(rf"{roi}mask_head\.upsample\.(weight|bias)", r"roi_heads.mask_predictor.conv5_mask.\1"),
             Rule(rf"{roi}mask_head\.conv_logits\.(weight|bias)", r"roi_heads.mask_predictor.mask_fcn_logits.\1",
                  _with_background_rows(1))]
    for stage in stages:  # Cascade R-CNN: one box head per stage
        box_head, predictor = cascade_stage_prefixes(stage)
        rules += _box_head_rules(rf"{roi}bbox_head\.{stage}", box_head, predictor, v2)
    return rules


def _fcos_rules() -> list[Rule]:
    rules = _neck_rules()
    for theirs, mine in (("cls_convs", "classification_head"), ("reg_convs", "regression_head")):
        for i in range(4):  # torchvision's Sequential(conv, GN, ReLU) x 4
            rules += _conv_module(rf"bbox_head\.{theirs}\.{i}", f"head.{mine}.conv.{3 * i}",
                                  f"head.{mine}.conv.{3 * i + 1}", norm_name="gn")
    return [*rules,
            Rule(r"bbox_head\.conv_cls\.(weight|bias)", r"head.classification_head.cls_logits.\1", _never_label_zero),
            Rule(r"bbox_head\.conv_reg\.(weight|bias)", r"head.regression_head.bbox_reg.\1"),
            Rule(r"bbox_head\.conv_centerness\.(weight|bias)", r"head.regression_head.bbox_ctrness.\1")]


FCOS_NOTE = ("mmdetection's FCOSHead of the HRNet configs predicts centerness from the classification branch and "
             "box sizes as exp(scale * x); torchvision's FCOS predicts centerness from the regression branch and "
             "sizes as ReLU(x) * stride: every tensor is placed, but detections differ until the model is fine-tuned")

STRUCTURE_HINTS = {
    "mmseg": "hrnet's segmentation heads match mmsegmentation's FCNHead with num_convs=1, kernel_size=1, "
             "concat_input=False (SegHRNet) and the [FCNHead, OCRHead] cascade (SegHRNetOCR); another head "
             "structure cannot map",
    "mmpose": "hrnet's pose models match mmpose's top-down heatmap head without deconvolution layers "
              "(pose_hrnet_*) and the AE HigherHRNet head (pose_higherhrnet_*)",
    "mmdet": "hrnet's detectors hold torchvision's RPN and RoI heads (Faster/Mask R-CNN: shared 2-FC box head, "
             "4-conv FCN mask head) or FCOS head on the HRFPN neck",
}


def _model_kind(model_keys: set[str]) -> str | None:
    """Which of our whole models ``model_keys`` belong to; None for others (a bare backbone, classification)."""
    if "rpn.head.cls_logits.weight" in model_keys:
        return "two_stage"
    if "head.regression_head.bbox_ctrness.weight" in model_keys:
        return "fcos"
    if "cls_head.weight" in model_keys:
        return "seg_ocr"
    if "last_layer.3.weight" in model_keys:
        return "seg"
    if "deconv_layers.0.0.0.weight" in model_keys:
        return "pose_higher"
    if "final_layer.weight" in model_keys and "classifier.weight" not in model_keys:
        return "pose"
    return None


def _family(state: Mapping[str, Tensor]) -> str:
    if any(k.startswith(("decode_head.", "auxiliary_head.")) for k in state):
        return "mmseg"
    if any(k.startswith(("keypoint_head.", "head.final_layer.")) for k in state):
        return "mmpose"
    return "mmdet"


def _rules(kind: str, state: Mapping[str, Tensor], backbone: str) -> list[Rule]:
    head = {"pose": _pose_rules, "pose_higher": _pose_higher_rules,
            "seg": lambda: _fcn_rules(r"decode_head", "last_layer"), "seg_ocr": _ocr_rules,
            "two_stage": lambda: _two_stage_rules(state), "fcos": _fcos_rules}[kind]()
    return [Rule(r"backbone\.(.+)", backbone + r"\1"), *head]


def _skip_reason(key: str, value: Tensor, kind: str) -> str | None:
    """Why a file tensor without a place in the model may be left out, or None if it may not."""
    if key.startswith("auxiliary_head."):
        return "training-only auxiliary head"
    if key.startswith("data_preprocessor."):
        return "input normalisation constants"
    if key.endswith("num_batches_tracked"):
        return "BN counter of a frozen-BN model"
    if kind == "fcos" and re.fullmatch(r"bbox_head\.scales\.\d+\.scale", key) and torch.allclose(
            value.float(), torch.ones_like(value, dtype=torch.float)):
        return "per-level scale of 1"
    return None


def convert_openmmlab(state: Mapping[str, Tensor], model_state: Mapping[str, Tensor], source: str
                      ) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """An OpenMMLab state dict in the model's key layout: ``(tensors, skipped file keys, notes)``.

    Raises :class:`CheckpointError` listing every file tensor that has no place in the model.
    """
    keys = set(model_state)
    kind, family = _model_kind(keys) or "pose", _family(state)
    backbone = "backbone." if "backbone.conv1.weight" in keys else ""
    rules = [(re.compile(r.pattern), r) for r in _rules(kind, state, backbone)]
    out: dict[str, Tensor] = {}
    skipped: list[str] = []
    unplaced: list[str] = []
    zero_biases = 0
    for key, value in state.items():
        match = next(((m, rule) for pattern, rule in rules if (m := pattern.fullmatch(key))), None)
        target = match[0].expand(match[1].target) if match else None
        if target not in keys:
            reason = _skip_reason(key, value, kind)
            if reason is not None:
                skipped.append(key)
            else:
                unplaced.append(key if target is None else f"{key} (-> {target})")
            continue
        rule = match[1]
        out[target] = rule.transform(value, model_state[target]) if rule.transform else value
        bias = target[: -len("weight")] + "bias"
        if rule.bias_free and bias in keys and bias not in out:
            out[bias] = torch.zeros_like(model_state[bias])
            zero_biases += 1
    if unplaced:
        unplaced.sort(key=lambda k: k.startswith("backbone."))  # the heads say most about the mismatch
        more = f" (+{len(unplaced) - SHOW} more)" if len(unplaced) > SHOW else ""
        raise CheckpointError(
            f"checkpoint {source} is an {family} checkpoint whose tensors do not all have a place in this model: "
            f"{len(unplaced)} left over: {', '.join(unplaced[:SHOW])}{more}. {STRUCTURE_HINTS[family]}; build the "
            "model of the checkpoint's architecture (see `hrnet weights list` for the preset of each release).")
    notes = [f"mapped a whole {family} checkpoint onto the model's layout"]
    if zero_biases:
        notes.append(f"gave {zero_biases} bias-free ConvModule conv(s) zero biases")
    if skipped:
        notes.append(f"skipped {len(skipped)} tensor(s) the model has no use for (auxiliary heads, BN counters)")
    if kind == "two_stage" and any(k.startswith("roi_head.") for k in state):
        notes.append("reordered the box classifier: background last (mmdetection 2.x) -> first (torchvision)")
    if kind == "fcos":
        notes.append(FCOS_NOTE)
    return out, skipped, notes
