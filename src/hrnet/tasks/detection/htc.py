"""Hybrid Task Cascade (mmdetection's ``HybridTaskCascade`` as the HRNet HTC configs set it).

HTC is Cascade Mask R-CNN (:mod:`.cascade`) with three changes:

* interleaved execution: stage ``t``'s mask head trains on RoIs sampled again from stage ``t``'s
  regressed boxes (Cascade Mask R-CNN's trains on the boxes the stage's box head received);
* mask information flow: stage ``t``'s mask head adds the conv features of stage ``t - 1``'s head
  (through a 1x1 conv + ReLU) to its RoI features; the earlier heads run on the same RoIs;
* the fused semantic branch (optional, ``semantic``): every pyramid level through a 1x1 conv, resized
  (bilinear) to the stride-8 level and summed, four 3x3 convs, then a 1x1 conv to the stuff + thing
  classes (COCO-Stuff's 183, cross-entropy ignoring 255, loss weight 0.2) and a 1x1 conv to a feature
  map whose 14x14 RoIAlign is added to every box (average-pooled to 7x7) and mask RoI feature.
  It trains from ``targets[i]["semantic"]``, an (H, W) label map of the image (COCO-Stuff's
  ``stuffthingmaps``), resized with the image and sub-sampled by 8.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.ops import MultiScaleRoIAlign

from .cascade import (
    MASK_CHANNELS,
    STAGE_IOU_THRESHOLDS,
    STAGE_LOSS_WEIGHTS,
    STAGE_TARGET_STDS,
    CascadeRoIHeads,
    replace_roi_heads,
)

__all__ = ["IGNORE_LABEL", "COCO_STUFF_CLASSES", "FusedSemanticHead", "HTCRoIHeads", "HybridTaskCascade",
           "semantic_labels"]

IGNORE_LABEL = 255
#: COCO-Stuff's label count (things and stuff, 0-182) that the HTC semantic head predicts
COCO_STUFF_CLASSES = 183
SEMANTIC_STRIDE = 8


def _conv_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2), nn.ReLU())


class FusedSemanticHead(nn.Module):
    """The semantic segmentation branch on the whole pyramid, fused at ``fusion_level`` (stride 8).
    Returns ``(logits, feature)``, both at the fusion level's resolution."""

    def __init__(self, channels: int, num_classes: int = COCO_STUFF_CLASSES,
                 levels: Sequence[str] = ("p2", "p3", "p4", "p5", "p6"), fusion_level: str = "p3",
                 num_convs: int = 4) -> None:
        super().__init__()
        if fusion_level not in levels:
            raise ValueError(f"fusion level {fusion_level!r} is not one of the levels {list(levels)}")
        self.fusion_level = fusion_level
        self.lateral = nn.ModuleDict({name: _conv_relu(channels, channels, 1) for name in levels})
        self.convs = nn.Sequential(*(_conv_relu(channels, channels, 3) for _ in range(num_convs)))
        self.embedding = _conv_relu(channels, channels, 1)
        self.logits = nn.Conv2d(channels, num_classes, 1)
        self.num_classes = num_classes

    def forward(self, features: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        fused = self.lateral[self.fusion_level](features[self.fusion_level])
        for name, lateral in self.lateral.items():
            if name != self.fusion_level:
                level = F.interpolate(features[name], size=fused.shape[-2:], mode="bilinear", align_corners=True)
                fused = fused + lateral(level)
        x = self.convs(fused)
        return self.logits(x), self.embedding(x)


def semantic_labels(targets: list[dict[str, Tensor]], image_shapes: list[tuple[int, int]],
                    size: tuple[int, int], stride: int = SEMANTIC_STRIDE) -> Tensor:
    """The (B, h, w) labels of the stride-``stride`` semantic logits of size ``size``: each image's
    ``semantic`` map brought to the image's size in the batch (nearest), padded with 255 like the batch,
    and sub-sampled by ``stride``."""
    height, width = size[0] * stride, size[1] * stride
    labels = torch.full((len(targets), height, width), IGNORE_LABEL, dtype=torch.int64,
                        device=targets[0]["semantic"].device)
    for i, (target, (h, w)) in enumerate(zip(targets, image_shapes, strict=True)):
        semantic = target["semantic"]
        if tuple(semantic.shape[-2:]) != (h, w):
            semantic = F.interpolate(semantic.reshape(1, 1, *semantic.shape[-2:]).float(), size=(h, w),
                                     mode="nearest")
        labels[i, :h, :w] = semantic.reshape(h, w)[:height, :width]
    return labels[:, ::stride, ::stride]


class HTCRoIHeads(CascadeRoIHeads):
    """Cascade mask heads, interleaved and with the mask information flow, and optionally the fused
    semantic branch whose feature joins every RoI feature."""

    def __init__(self, box_roi_pool: MultiScaleRoIAlign, in_channels: int, num_classes: int, *,
                 mask_roi_pool: MultiScaleRoIAlign, semantic: bool = True,
                 semantic_num_classes: int = COCO_STUFF_CLASSES, semantic_loss_weight: float = 0.2,
                 **options: Any) -> None:
        super().__init__(box_roi_pool, in_channels, num_classes, mask_roi_pool=mask_roi_pool,
                         mask_info_flow=True, interleaved=True, **options)
        self.semantic_head = FusedSemanticHead(in_channels, semantic_num_classes) if semantic else None
        self.semantic_roi_pool = MultiScaleRoIAlign(["semantic"], mask_roi_pool.output_size, sampling_ratio=2)
        self.semantic_loss_weight = semantic_loss_weight

    def check_training_targets(self, targets: list[dict[str, Tensor]] | None) -> list[dict[str, Tensor]]:
        targets = super().check_training_targets(targets)
        if self.semantic_head is not None and any("semantic" not in t for t in targets):
            raise ValueError("HTC's semantic branch trains on targets with a 'semantic' label map (stuff maps); "
                             "build it with semantic=False to train without one")
        return targets

    def context(self, features: dict[str, Tensor], image_shapes: list[tuple[int, int]],
                targets: list[dict[str, Tensor]] | None) -> tuple[Tensor | None, dict[str, Tensor]]:
        if self.semantic_head is None:
            return None, {}
        logits, feature = self.semantic_head(features)
        if targets is None:
            return feature, {}
        labels = semantic_labels(targets, image_shapes, tuple(logits.shape[-2:]))
        labels[labels >= self.semantic_head.num_classes] = IGNORE_LABEL
        loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_LABEL) if (labels != IGNORE_LABEL).any() \
            else logits.sum() * 0
        return feature, {"loss_semantic_seg": self.semantic_loss_weight * loss}

    def _with_semantic(self, roi_features: Tensor, boxes: list[Tensor], image_shapes: list[tuple[int, int]],
                       semantic: Tensor | None, pool: MultiScaleRoIAlign) -> Tensor:
        """``roi_features`` (of ``pool``) + the semantic feature's 14x14 RoIAlign, average-pooled to their size
        (a static factor, as ONNX export needs)."""
        if semantic is None:
            return roi_features
        pooled = self.semantic_roi_pool({"semantic": semantic}, boxes, image_shapes)
        factor = self.semantic_roi_pool.output_size[0] // pool.output_size[0]
        return roi_features + (F.avg_pool2d(pooled, factor) if factor > 1 else pooled)

    def box_features(self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]],
                     context: Any) -> Tensor:
        return self._with_semantic(super().box_features(features, boxes, image_shapes, context), boxes,
                                   image_shapes, context, self.box_roi_pool)

    def mask_features(self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]],
                      context: Any) -> Tensor:
        return self._with_semantic(super().mask_features(features, boxes, image_shapes, context), boxes,
                                   image_shapes, context, self.mask_roi_pool)


class HybridTaskCascade(FasterRCNN):
    """torchvision's Faster R-CNN (transform, RPN, post-processing) with :class:`HTCRoIHeads`.

    ``semantic`` switches the fused semantic branch (it needs ``semantic`` label maps in the training
    targets); ``semantic_num_classes`` is the label count of those maps (labels at or above it, and 255,
    are ignored). The other options are :class:`~.cascade.CascadeRCNN`'s.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, *, mask_roi_pool: MultiScaleRoIAlign,
                 semantic: bool = True, semantic_num_classes: int = COCO_STUFF_CLASSES,
                 semantic_loss_weight: float = 0.2, mask_channels: int = MASK_CHANNELS,
                 stage_iou_thresholds: Sequence[float] = STAGE_IOU_THRESHOLDS,
                 stage_target_stds: Sequence[Sequence[float]] = STAGE_TARGET_STDS,
                 stage_loss_weights: Sequence[float] = STAGE_LOSS_WEIGHTS, **kwargs: Any) -> None:
        # a placeholder box head: torchvision parses the RoI options into it, the cascade replaces it
        super().__init__(backbone, None, box_head=nn.Identity(), box_predictor=nn.Identity(), **kwargs)
        replace_roi_heads(self, HTCRoIHeads, num_classes=num_classes, iou_thresholds=stage_iou_thresholds,
                          target_stds=stage_target_stds, loss_weights=stage_loss_weights,
                          mask_roi_pool=mask_roi_pool, semantic=semantic, semantic_num_classes=semantic_num_classes,
                          semantic_loss_weight=semantic_loss_weight, mask_channels=mask_channels)
