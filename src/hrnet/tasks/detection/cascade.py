"""Cascade R-CNN and Cascade Mask R-CNN (mmdetection's ``CascadeRoIHead``) on torchvision's pieces.

The RPN, transform, RoIAlign, matcher, sampler and box coder are torchvision's; :class:`CascadeRoIHeads`
keeps torchvision's ``RoIHeads`` call contract (``features, proposals, image_shapes, targets ->
detections, losses``) so it drops into a :class:`~torchvision.models.detection.FasterRCNN`. What differs
from Faster R-CNN, as the HRNet cascade configs set it:

* three box stages, each a 2-FC (1024) head with its own class-agnostic predictor; stage ``t`` matches
  RoIs to objects at IoU >= 0.5 / 0.6 / 0.7 and encodes the box targets with standard deviations
  (0.1, 0.1, 0.2, 0.2) / (0.05, 0.05, 0.1, 0.1) / (0.033, 0.033, 0.067, 0.067) (box-coder weights
  1 / std); each samples 512 RoIs per image at 25 % positives with the ground-truth boxes added;
* smooth-L1 with beta 1.0 (Faster R-CNN's RoI head uses 1/9), normalised by the sampled RoIs;
  the stages' losses weigh 1 / 0.5 / 0.25;
* stage ``t + 1`` trains and runs on stage ``t``'s regressed boxes (detached, clipped to the image, the
  added ground-truth boxes dropped);
* at test time the classification logits of the three stages are averaged (mmdetection averages the
  logits, then applies the softmax) and the last stage's boxes are kept;
* Cascade Mask R-CNN adds a mask head per stage (14x14 RoIAlign, four 3x3 convs, deconv to 28x28) trained
  on that stage's positives with the stage's loss weight; at test time the stages' mask probabilities
  on the final boxes are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads, maskrcnn_inference, maskrcnn_loss
from torchvision.ops import MultiScaleRoIAlign, box_iou, clip_boxes_to_image

from ...errors import ConfigError

__all__ = [
    "STAGE_IOU_THRESHOLDS",
    "STAGE_TARGET_STDS",
    "STAGE_LOSS_WEIGHTS",
    "AgnosticBoxPredictor",
    "BoxStage",
    "MASK_CHANNELS",
    "StageMaskHead",
    "CascadeRoIHeads",
    "CascadeRCNN",
    "cascade_box_loss",
]

STAGE_IOU_THRESHOLDS = (0.5, 0.6, 0.7)
STAGE_TARGET_STDS = ((0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.1, 0.1), (0.033, 0.033, 0.067, 0.067))
STAGE_LOSS_WEIGHTS = (1.0, 0.5, 0.25)
REPRESENTATION_SIZE = 1024
MASK_CHANNELS = 256


class AgnosticBoxPredictor(nn.Module):
    """Class logits (background + K) and one class-agnostic box delta per RoI; initialised as mmdetection's
    box heads (normal, std 0.01 for the logits and 0.001 for the deltas), so a stage starts near identity."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, 4)
        for layer, std in ((self.cls_score, 0.01), (self.bbox_pred, 0.001)):
            nn.init.normal_(layer.weight, std=std)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


class BoxStage(nn.Module):
    """One cascade stage: its box head and predictor, and the IoU threshold and box coder of its targets."""

    def __init__(self, in_channels: int, num_classes: int, iou_threshold: float,
                 target_stds: Sequence[float], loss_weight: float) -> None:
        super().__init__()
        self.box_head = TwoMLPHead(in_channels, REPRESENTATION_SIZE)
        self.box_predictor = AgnosticBoxPredictor(REPRESENTATION_SIZE, num_classes)
        self.iou_threshold = iou_threshold
        self.target_stds = tuple(target_stds)
        self.loss_weight = loss_weight
        # positives at IoU >= t, negatives below: mmdetection's MaxIoUAssigner with pos = neg = min_pos = t
        self.proposal_matcher = det_utils.Matcher(iou_threshold, iou_threshold, allow_low_quality_matches=False)
        self.box_coder = det_utils.BoxCoder(tuple(1.0 / s for s in target_stds))

    def forward(self, box_features: Tensor) -> tuple[Tensor, Tensor]:
        return self.box_predictor(self.box_head(box_features))


class StageMaskHead(nn.Module):
    """A stage's mask head: four 3x3 convs, a 2x deconv and per-class 1x1 logits (torchvision's Mask R-CNN
    pieces; ``channels`` 256 as mmdetection's). With ``takes_previous`` (HTC's mask information flow) the
    previous stage's conv features enter through a 1x1 conv + ReLU and are added to the RoI features
    first. Returns the logits and the conv features (which the next stage's head takes)."""

    def __init__(self, in_channels: int, num_classes: int, takes_previous: bool = False,
                 channels: int = MASK_CHANNELS) -> None:
        super().__init__()
        self.convs = MaskRCNNHeads(in_channels, (channels,) * 4, dilation=1)
        self.predictor = MaskRCNNPredictor(channels, channels, num_classes)
        self.previous = nn.Sequential(nn.Conv2d(channels, in_channels, 1), nn.ReLU()) if takes_previous else None

    def forward(self, x: Tensor, previous: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if previous is not None:
            if self.previous is None:
                raise ValueError("this mask head takes no previous-stage features")
            x = x + self.previous(previous)
        features = self.convs(x)
        return self.predictor(features), features


def cascade_box_loss(class_logits: Tensor, box_deltas: Tensor, labels: Tensor, box_targets: Tensor
                     ) -> tuple[Tensor, Tensor]:
    """Cross-entropy over the sampled RoIs and smooth-L1 (beta 1, summed over the positives' four
    coordinates, divided by the number of sampled RoIs) of class-agnostic deltas, as mmdetection's box head."""
    classification = F.cross_entropy(class_logits, labels)
    positive = labels > 0
    regression = F.smooth_l1_loss(box_deltas[positive], box_targets[positive], beta=1.0, reduction="sum")
    return classification, regression / max(labels.numel(), 1)


class Sampled:
    """The RoIs a stage trains on, per image: boxes, labels (0 = background), index of the matched object,
    whether the RoI is an added ground-truth box, and the encoded box targets."""

    def __init__(self) -> None:
        self.boxes: list[Tensor] = []
        self.labels: list[Tensor] = []
        self.matched: list[Tensor] = []
        self.from_gt: list[Tensor] = []
        self.targets: list[Tensor] = []

    def positives(self) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: the positive RoIs and the index of their object."""
        keep = [labels > 0 for labels in self.labels]
        return ([b[k] for b, k in zip(self.boxes, keep, strict=True)],
                [m[k] for m, k in zip(self.matched, keep, strict=True)])


class CascadeRoIHeads(RoIHeads):
    """Cascade R-CNN's RoI heads (and Cascade Mask R-CNN's with ``mask_roi_pool``), with torchvision's
    ``RoIHeads`` call contract; the inherited post-processing (softmax, score threshold, per-class NMS,
    top-k) decodes with the last stage's coder."""

    def __init__(self, box_roi_pool: MultiScaleRoIAlign, in_channels: int, num_classes: int, *,
                 iou_thresholds: Sequence[float] = STAGE_IOU_THRESHOLDS,
                 target_stds: Sequence[Sequence[float]] = STAGE_TARGET_STDS,
                 loss_weights: Sequence[float] = STAGE_LOSS_WEIGHTS,
                 batch_size_per_image: int = 512, positive_fraction: float = 0.25, score_thresh: float = 0.05,
                 nms_thresh: float = 0.5, detections_per_img: int = 100,
                 mask_roi_pool: MultiScaleRoIAlign | None = None, mask_channels: int = MASK_CHANNELS,
                 mask_info_flow: bool = False, interleaved: bool = False) -> None:
        if not len(iou_thresholds) == len(target_stds) == len(loss_weights) >= 1:
            raise ConfigError(f"a cascade needs as many IoU thresholds ({len(iou_thresholds)}), target stds "
                              f"({len(target_stds)}) and loss weights ({len(loss_weights)}), at least one each")
        if any(len(stds) != 4 for stds in target_stds):
            raise ConfigError(f"each stage's target stds are 4 numbers (x, y, w, h), got {list(target_stds)}")
        super().__init__(box_roi_pool, None, None, iou_thresholds[0], iou_thresholds[0], batch_size_per_image,
                         positive_fraction, tuple(1.0 / s for s in target_stds[-1]), score_thresh, nms_thresh,
                         detections_per_img, mask_roi_pool=mask_roi_pool)
        resolution = box_roi_pool.output_size[0]
        self.stages = nn.ModuleList(
            BoxStage(in_channels * resolution**2, num_classes, iou, stds, weight)
            for iou, stds, weight in zip(iou_thresholds, target_stds, loss_weights, strict=True))
        self.mask_heads = None if mask_roi_pool is None else nn.ModuleList(
            StageMaskHead(in_channels, num_classes, takes_previous=mask_info_flow and t > 0, channels=mask_channels)
            for t in range(len(self.stages)))
        self.num_classes = num_classes
        self.mask_info_flow = mask_info_flow
        self.interleaved = interleaved

    # ----------------------------------------------------------------------------------- features

    def context(self, features: dict[str, Tensor], image_shapes: list[tuple[int, int]],
                targets: list[dict[str, Tensor]] | None) -> tuple[Any, dict[str, Tensor]]:
        """Whole-image context the RoI features share, and its losses (HTC's semantic branch); none here."""
        return None, {}

    def box_features(self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]],
                     context: Any) -> Tensor:
        return self.box_roi_pool(features, boxes, image_shapes)

    def mask_features(self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]],
                      context: Any) -> Tensor:
        return self.mask_roi_pool(features, boxes, image_shapes)

    # ------------------------------------------------------------------------------------- training

    def sample(self, stage: BoxStage, proposals: list[Tensor], targets: list[dict[str, Tensor]]) -> Sampled:
        """Match proposals + ground-truth boxes to the objects at the stage's IoU threshold, sample
        ``batch_size_per_image`` of them at ``positive_fraction`` positives, encode their box targets."""
        candidates, labels, matched = [], [], []
        for boxes, target in zip(proposals, targets, strict=True):
            gt_boxes = target["boxes"].to(boxes.dtype)
            candidate = torch.cat([boxes, gt_boxes])
            if gt_boxes.numel() == 0:
                index = torch.zeros(len(candidate), dtype=torch.int64, device=boxes.device)
                label = torch.zeros_like(index)
            else:
                index = stage.proposal_matcher(box_iou(gt_boxes, candidate))
                label = target["labels"][index.clamp(min=0)].to(torch.int64)
                label[index == det_utils.Matcher.BELOW_LOW_THRESHOLD] = 0
                label[index == det_utils.Matcher.BETWEEN_THRESHOLDS] = -1
            candidates.append(candidate)
            labels.append(label)
            matched.append(index.clamp(min=0))
        positive, negative = self.fg_bg_sampler(labels)
        sampled = Sampled()
        for candidate, label, index, pos, neg, target, count in zip(
                candidates, labels, matched, positive, negative, targets, map(len, proposals), strict=True):
            keep = torch.where(pos | neg)[0]
            gt_boxes = target["boxes"].to(candidate.dtype)
            if gt_boxes.numel() == 0:
                gt_boxes = torch.zeros((1, 4), dtype=candidate.dtype, device=candidate.device)
            sampled.boxes.append(candidate[keep])
            sampled.labels.append(label[keep])
            sampled.matched.append(index[keep])
            sampled.from_gt.append(keep >= count)
            sampled.targets.append(stage.box_coder.encode_single(gt_boxes[index[keep]], candidate[keep]))
        return sampled

    def refine(self, stage: BoxStage, boxes: list[Tensor], deltas: Tensor, image_shapes: list[tuple[int, int]],
               from_gt: list[Tensor] | None = None) -> list[Tensor]:
        """The stage's regressed boxes (no gradient), clipped to each image; in training the added
        ground-truth boxes are dropped (the next stage adds them again)."""
        decoded = stage.box_coder.decode_single(deltas.detach(), torch.cat(boxes)).split([b.shape[0] for b in boxes])
        refined = [clip_boxes_to_image(b, shape) for b, shape in zip(decoded, image_shapes, strict=True)]
        if from_gt is not None:
            refined = [b[~gt] for b, gt in zip(refined, from_gt, strict=True)]
        return refined

    def stage_losses(self, t: int, features: dict[str, Tensor], proposals: list[Tensor],
                     image_shapes: list[tuple[int, int]], targets: list[dict[str, Tensor]], context: Any
                     ) -> tuple[dict[str, Tensor], list[Tensor]]:
        """Stage ``t``'s weighted losses and the proposals of the next stage."""
        stage = self.stages[t]
        sampled = self.sample(stage, proposals, targets)
        logits, deltas = stage(self.box_features(features, sampled.boxes, image_shapes, context))
        classification, regression = cascade_box_loss(logits, deltas, torch.cat(sampled.labels),
                                                      torch.cat(sampled.targets))
        losses = {f"loss_classifier_s{t + 1}": stage.loss_weight * classification,
                  f"loss_box_reg_s{t + 1}": stage.loss_weight * regression}
        refined = self.refine(stage, sampled.boxes, deltas, image_shapes, sampled.from_gt)
        if self.mask_heads is not None:
            # interleaved (HTC): the mask head trains on RoIs sampled again from this stage's regressed boxes
            boxes, matched = (self.sample(stage, refined, targets) if self.interleaved else sampled).positives()
            mask_logits = self.training_mask_logits(self.mask_features(features, boxes, image_shapes, context), t)
            losses[f"loss_mask_s{t + 1}"] = stage.loss_weight * self.mask_loss(mask_logits, boxes, matched, targets)
        return losses, refined

    @staticmethod
    def mask_loss(mask_logits: Tensor, boxes: list[Tensor], matched: list[Tensor],
                  targets: list[dict[str, Tensor]]) -> Tensor:
        return maskrcnn_loss(mask_logits, boxes, [t["masks"] for t in targets], [t["labels"] for t in targets],
                             matched)

    def check_training_targets(self, targets: list[dict[str, Tensor]] | None) -> list[dict[str, Tensor]]:
        if targets is None:
            raise ValueError("targets are needed in training")
        self.check_targets(targets)
        if self.mask_heads is not None and any("masks" not in t for t in targets):
            raise ValueError("a mask cascade trains on targets with 'masks'")
        return targets

    # ------------------------------------------------------------------------------------ inference

    def detect(self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]],
               context: Any) -> list[dict[str, Tensor]]:
        """Run the stages in turn on the refined boxes; score by the mean logits, box by the last stage."""
        rois, logits_sum = proposals, None
        for t, stage in enumerate(self.stages):
            logits, deltas = stage(self.box_features(features, rois, image_shapes, context))
            logits_sum = logits if logits_sum is None else logits_sum + logits
            if t < len(self.stages) - 1:
                rois = self.refine(stage, rois, deltas, image_shapes)
        # the inherited post-processing decodes (N, classes x 4) deltas with the last stage's coder
        boxes, scores, labels = self.postprocess_detections(
            logits_sum / len(self.stages), deltas.repeat(1, self.num_classes), rois, image_shapes)
        detections = [{"boxes": b, "labels": lab, "scores": s} for b, s, lab in zip(boxes, scores, labels,
                                                                                     strict=True)]
        if self.mask_heads is not None:
            for detection, masks in zip(detections, self.detect_masks(features, boxes, labels, image_shapes,
                                                                      context), strict=True):
                detection["masks"] = masks
        return detections

    def detect_masks(self, features: dict[str, Tensor], boxes: list[Tensor], labels: list[Tensor],
                     image_shapes: list[tuple[int, int]], context: Any) -> list[Tensor]:
        """The mean over the stages of each head's mask probability for the detected class, (N, 1, 28, 28)."""
        mask_features = self.mask_features(features, boxes, image_shapes, context)
        total = None
        for logits in self.stage_mask_logits(mask_features):
            probability = torch.cat(maskrcnn_inference(logits, labels))
            total = probability if total is None else total + probability
        return list((total / len(self.stages)).split([b.shape[0] for b in boxes]))

    def stage_mask_logits(self, mask_features: Tensor, last: int | None = None) -> list[Tensor]:
        """The mask logits of heads ``0..last`` (all by default) on the same RoI features; with the mask
        information flow (HTC) each head also takes the previous head's conv features."""
        heads = self.mask_heads if last is None else self.mask_heads[:last + 1]
        if not self.mask_info_flow:
            return [head(mask_features)[0] for head in heads]
        logits, previous = [], None
        for head in heads:
            stage_logits, previous = head(mask_features, previous)
            logits.append(stage_logits)
        return logits

    def training_mask_logits(self, mask_features: Tensor, t: int) -> Tensor:
        """Head ``t``'s logits (after heads ``0..t-1`` when their features flow into it)."""
        if self.mask_info_flow:
            return self.stage_mask_logits(mask_features, t)[-1]
        return self.mask_heads[t](mask_features)[0]

    # -------------------------------------------------------------------------------------- forward

    def forward(self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]],
                targets: list[dict[str, Tensor]] | None = None) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        if self.training:
            targets = self.check_training_targets(targets)
        context, losses = self.context(features, image_shapes, targets if self.training else None)
        if not self.training:
            return self.detect(features, proposals, image_shapes, context), {}
        for t in range(len(self.stages)):
            stage_losses, proposals = self.stage_losses(t, features, proposals, image_shapes, targets, context)
            losses.update(stage_losses)
        return [], losses


def replace_roi_heads(model: FasterRCNN, build: Any, **options: Any) -> None:
    """Build the model's cascade heads from the settings torchvision parsed into its placeholder RoIHeads
    (the pooling, sampler size and fraction, test thresholds) and put them in its place."""
    placeholder: RoIHeads = model.roi_heads
    model.roi_heads = build(
        placeholder.box_roi_pool, model.backbone.out_channels,
        batch_size_per_image=placeholder.fg_bg_sampler.batch_size_per_image,
        positive_fraction=placeholder.fg_bg_sampler.positive_fraction, score_thresh=placeholder.score_thresh,
        nms_thresh=placeholder.nms_thresh, detections_per_img=placeholder.detections_per_img, **options)


class CascadeRCNN(FasterRCNN):
    """torchvision's Faster R-CNN (transform, RPN, post-processing) with :class:`CascadeRoIHeads`.

    ``mask_roi_pool`` (a 14x14 ``MultiScaleRoIAlign``) makes it Cascade Mask R-CNN. The RoI options of
    ``FasterRCNN`` apply (``box_batch_size_per_image``, ``box_positive_fraction``, ``box_score_thresh``,
    ``box_nms_thresh``, ``box_detections_per_img``); the stages' IoU thresholds replace its
    ``box_fg_iou_thresh`` / ``box_bg_iou_thresh``. ``mask_channels`` narrows the mask heads' convs (256 as
    mmdetection's) for reduced-width models.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, *,
                 stage_iou_thresholds: Sequence[float] = STAGE_IOU_THRESHOLDS,
                 stage_target_stds: Sequence[Sequence[float]] = STAGE_TARGET_STDS,
                 stage_loss_weights: Sequence[float] = STAGE_LOSS_WEIGHTS,
                 mask_roi_pool: MultiScaleRoIAlign | None = None, mask_channels: int = MASK_CHANNELS,
                 **kwargs: Any) -> None:
        # a placeholder box head: torchvision parses the RoI options into it, the cascade replaces it
        super().__init__(backbone, None, box_head=nn.Identity(), box_predictor=nn.Identity(), **kwargs)
        replace_roi_heads(self, CascadeRoIHeads, num_classes=num_classes, iou_thresholds=stage_iou_thresholds,
                          target_stds=stage_target_stds, loss_weights=stage_loss_weights,
                          mask_roi_pool=mask_roi_pool, mask_channels=mask_channels)
