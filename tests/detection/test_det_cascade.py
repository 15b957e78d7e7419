"""Cascade R-CNN, Cascade Mask R-CNN and HTC: the definitions mmdetection's cascade heads fix, pinned."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from hrnet.errors import ConfigError
from hrnet.tasks.detection.cascade import STAGE_TARGET_STDS, CascadeRoIHeads
from hrnet.tasks.detection.htc import IGNORE_LABEL, HTCRoIHeads, semantic_labels
from hrnet.tasks.detection.models import ARCHITECTURES, build_detector, list_detectors, roi_align

CHANNELS = 8
IMAGE = (64, 96)


def heads(kind=CascadeRoIHeads, **options) -> nn.Module:
    torch.manual_seed(0)
    return kind(roi_align(7), CHANNELS, 3, **options)


def pyramid(batch: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {f"p{k}": torch.randn(batch, CHANNELS, IMAGE[0] // 2**k, IMAGE[1] // 2**k) for k in range(2, 7)}


def shifted(box: torch.Tensor, fraction: float) -> torch.Tensor:
    """``box`` moved right by ``fraction`` of its width."""
    out = box.clone()
    out[[0, 2]] += fraction * (box[2] - box[0])
    return out


def iou_one_axis_shift(fraction: float) -> float:
    return (1 - fraction) / (1 + fraction)


def test_presets_and_defaults():
    names = list_detectors()
    for arch, backbones in (("cascade_rcnn", (18, 32, 40, 48)), ("cascade_mask_rcnn", (18, 32, 48)),
                            ("htc", (18, 32, 48))):
        assert [n for n in names if n.startswith(f"{arch}_hrnetv2p")] == [f"{arch}_hrnetv2p_w{w}" for w in backbones]
    with torch.device("meta"):
        model = build_detector("htc", "hrnetv2p_w18")
    roi = model.roi_heads
    assert [s.iou_threshold for s in roi.stages] == [0.5, 0.6, 0.7]
    assert [s.proposal_matcher.high_threshold for s in roi.stages] == [0.5, 0.6, 0.7]
    assert [s.proposal_matcher.low_threshold for s in roi.stages] == [0.5, 0.6, 0.7]
    assert [s.loss_weight for s in roi.stages] == [1.0, 0.5, 0.25]
    for stage, stds in zip(roi.stages, STAGE_TARGET_STDS, strict=True):
        assert stage.box_coder.weights == pytest.approx(tuple(1 / s for s in stds))
        assert stage.box_predictor.bbox_pred.out_features == 4  # class-agnostic
        assert stage.box_predictor.cls_score.out_features == 81
    assert (roi.fg_bg_sampler.batch_size_per_image, roi.fg_bg_sampler.positive_fraction) == (512, 0.25)
    assert (model.rpn._post_nms_top_n["testing"], roi.score_thresh, roi.detections_per_img) == (1000, 0.001, 100)
    assert roi.mask_roi_pool.output_size == (14, 14) and roi.semantic_head.num_classes == 183
    assert [h.previous is not None for h in roi.mask_heads] == [False, True, True]
    assert ARCHITECTURES["cascade_mask_rcnn"].predicts_masks and not ARCHITECTURES["cascade_rcnn"].predicts_masks


@pytest.mark.parametrize("t", [0, 1, 2])
def test_each_stage_matches_at_its_iou_and_encodes_with_its_stds(t):
    """Proposals at IoU 0.54 / 0.64 / 0.74 with the object: positives exactly from the stage's threshold on,
    the added ground-truth box always; box targets are the deltas divided by the stage's stds."""
    roi = heads()
    gt = torch.tensor([10.0, 10.0, 60.0, 50.0])
    fractions = [next(f for f in torch.linspace(0, 0.5, 5001).tolist() if iou_one_axis_shift(f) < iou)
                 for iou in (0.74, 0.64, 0.54)]
    proposals = torch.stack([shifted(gt, f) for f in fractions])
    sampled = roi.sample(roi.stages[t], [proposals], [{"boxes": gt[None], "labels": torch.tensor([2])}])
    boxes, labels = sampled.boxes[0], sampled.labels[0]
    assert len(boxes) == 4 and sampled.from_gt[0].sum() == 1
    threshold = (0.5, 0.6, 0.7)[t]
    for box, label, target in zip(boxes, labels, sampled.targets[0], strict=True):
        iou = iou_one_axis_shift(float((box[0] - gt[0]) / (gt[2] - gt[0])))
        assert label == (2 if iou >= threshold else 0)
        width = box[2] - box[0]
        dx = (gt[0] + gt[2] - box[0] - box[2]) / 2 / width
        torch.testing.assert_close(target, torch.tensor([dx, 0.0, 0.0, 0.0]) / torch.tensor(STAGE_TARGET_STDS[t]))


def training_losses(roi: nn.Module, with_masks: bool = False) -> dict[str, torch.Tensor]:
    gt = torch.tensor([[10.0, 10.0, 60.0, 50.0], [50.0, 20.0, 90.0, 60.0]])
    target = {"boxes": gt, "labels": torch.tensor([1, 2])}
    if with_masks:
        target["masks"] = torch.zeros(2, *IMAGE, dtype=torch.uint8)
        target["masks"][0, 10:50, 10:60] = 1
        target["masks"][1, 20:60, 50:90] = 1
    proposals = torch.cat([gt + 3, gt - 2, torch.tensor([[0.0, 0.0, 30.0, 30.0], [40.0, 5.0, 95.0, 40.0]])])
    torch.manual_seed(2)
    return roi.train()(pyramid(), [proposals], [IMAGE], [target])[1]


def test_stage_loss_weights_scale_box_and_mask_losses():
    unweighted = training_losses(heads(mask_roi_pool=roi_align(14), loss_weights=(1.0, 1.0, 1.0)), with_masks=True)
    weighted = training_losses(heads(mask_roi_pool=roi_align(14)), with_masks=True)
    assert set(weighted) == {f"loss_{kind}_s{t}" for kind in ("classifier", "box_reg", "mask") for t in (1, 2, 3)}
    for t, weight in ((1, 1.0), (2, 0.5), (3, 0.25)):
        for kind in ("classifier", "box_reg", "mask"):
            name = f"loss_{kind}_s{t}"
            torch.testing.assert_close(weighted[name], weight * unweighted[name])
            assert unweighted[name] > 0 or kind == "box_reg"


def test_smooth_l1_has_beta_one():
    """The box loss is smooth-L1 with beta 1 (|x| - 0.5 beyond 1, x^2 / 2 within), summed and divided by the
    sampled RoIs -- not torchvision's beta 1/9."""
    from hrnet.tasks.detection.cascade import cascade_box_loss

    labels = torch.tensor([1, 0, 0, 0])
    deltas = torch.tensor([[0.5, 2.0, 0.0, 0.0]] + [[9.0] * 4] * 3)
    _, regression = cascade_box_loss(torch.zeros(4, 3), deltas, labels, torch.zeros(4, 4))
    assert float(regression) == pytest.approx((0.5**2 / 2 + (2.0 - 0.5)) / 4)


def test_each_stage_trains_on_the_previous_stage_s_detached_boxes():
    """Stage 1 regresses every box right by 0.1 of its width (delta 1 x std 0.1): stage 2 samples from
    exactly those boxes (without the ground truth stage 1 added), with no gradient."""
    roi = heads()
    first = roi.stages[0].box_predictor.bbox_pred
    nn.init.zeros_(first.weight)
    with torch.no_grad():
        first.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    seen = []
    sample = roi.sample

    def recording(stage, proposals, targets):
        result = sample(stage, proposals, targets)
        seen.append((stage, proposals, result))
        return result

    roi.sample = recording
    training_losses(roi)
    (s1, _, first_sampled), (s2, second_inputs, _), (s3, _, _) = seen
    assert (s1, s2, s3) == tuple(roi.stages)
    kept = first_sampled.boxes[0][~first_sampled.from_gt[0]]
    expected = torch.stack([shifted(b, 0.1) for b in kept]).clamp(min=0)
    expected[:, [0, 2]] = expected[:, [0, 2]].clamp(max=IMAGE[1])
    torch.testing.assert_close(second_inputs[0], expected)
    assert not second_inputs[0].requires_grad


def test_test_time_scores_average_the_stage_logits_and_boxes_come_from_the_last_stage():
    roi = heads(score_thresh=0.0).eval()
    stage_logits = [torch.tensor([0.0, 2.0, -1.0]), torch.tensor([0.0, -1.0, 3.0]), torch.tensor([1.0, 0.5, 0.5])]
    for stage, logits in zip(roi.stages, stage_logits, strict=True):
        for layer in (stage.box_predictor.cls_score, stage.box_predictor.bbox_pred):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        with torch.no_grad():
            stage.box_predictor.cls_score.bias.copy_(logits)
    with torch.no_grad():
        roi.stages[2].box_predictor.bbox_pred.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    proposal = torch.tensor([[20.0, 10.0, 60.0, 50.0]])
    with torch.no_grad():
        detections, losses = roi(pyramid(), [proposal], [IMAGE])
    assert losses == {}
    detection = detections[0]
    expected = torch.softmax(torch.stack(stage_logits).mean(0), 0)[1:]
    order = detection["labels"].argsort()
    torch.testing.assert_close(detection["scores"][order], expected)
    # the last stage's delta 1 x its std 0.033 of the width, the first two stages' zero
    torch.testing.assert_close(detection["boxes"], shifted(proposal[0], 0.033).expand(2, 4))


def test_htc_mask_information_flow_and_test_time_mask_average():
    """Head t adds head t-1's conv features (through its 1x1 conv) to the RoI features; at test time the
    stages' mask probabilities are averaged."""
    roi = heads(HTCRoIHeads, mask_roi_pool=roi_align(14), semantic=False).eval()
    x = torch.randn(2, CHANNELS, 14, 14)
    logits = roi.stage_mask_logits(x)
    features0 = roi.mask_heads[0].convs(x)
    features1 = roi.mask_heads[1].convs(x + roi.mask_heads[1].previous(features0))
    expected2 = roi.mask_heads[2].predictor(roi.mask_heads[2].convs(x + roi.mask_heads[2].previous(features1)))
    torch.testing.assert_close(logits[0], roi.mask_heads[0].predictor(features0))
    torch.testing.assert_close(logits[2], expected2)
    labels = [torch.tensor([1, 2])]
    boxes = [torch.tensor([[10.0, 10.0, 50.0, 40.0], [30.0, 20.0, 80.0, 60.0]])]
    features = pyramid()
    with torch.no_grad():
        masks = roi.detect_masks(features, boxes, labels, [IMAGE], None)[0]
        stage = roi.stage_mask_logits(roi.mask_features(features, boxes, [IMAGE], None))
    mean = torch.stack([s.sigmoid()[torch.arange(2), labels[0]] for s in stage]).mean(0)[:, None]
    torch.testing.assert_close(masks, mean)
    # the training path of stage 3 reaches the first head's convs through the flow
    roi.train()
    roi.training_mask_logits(x, 2).sum().backward()
    assert roi.mask_heads[0].convs[0][0].weight.grad.abs().sum() > 0
    assert roi.mask_heads[0].predictor.mask_fcn_logits.weight.grad is None


def test_cascade_mask_heads_do_not_share_features():
    roi = heads(mask_roi_pool=roi_align(14))
    assert all(h.previous is None for h in roi.mask_heads) and not roi.mask_info_flow and not roi.interleaved
    x = torch.randn(1, CHANNELS, 14, 14)
    roi.training_mask_logits(x, 2).sum().backward()
    assert all(p.grad is None for p in roi.mask_heads[0].parameters())


def test_semantic_branch_loss_and_fusion():
    roi = heads(HTCRoIHeads, mask_roi_pool=roi_align(14), semantic_num_classes=5)
    target = {"boxes": torch.tensor([[10.0, 10.0, 60.0, 50.0]]), "labels": torch.tensor([1]),
              "masks": torch.zeros(1, *IMAGE, dtype=torch.uint8), "semantic": torch.full(IMAGE, 4)}
    target["masks"][0, 10:50, 10:60] = 1
    target["semantic"][10:50, 10:60] = 0
    torch.manual_seed(3)
    losses = roi.train()(pyramid(), [target["boxes"] + 2], [IMAGE], [target])[1]
    logits, _ = roi.semantic_head(pyramid())
    assert logits.shape[-2:] == (IMAGE[0] // 8, IMAGE[1] // 8)
    expected = torch.nn.functional.cross_entropy(logits, target["semantic"][None, ::8, ::8])
    torch.testing.assert_close(losses["loss_semantic_seg"], 0.2 * expected)
    with pytest.raises(ValueError, match="semantic"):
        roi({**pyramid()}, [target["boxes"]], [IMAGE], [{k: v for k, v in target.items() if k != "semantic"}])


def test_semantic_labels_follow_the_image_size_and_padding():
    semantic = torch.arange(16 * 24).reshape(16, 24) % 7
    labels = semantic_labels([{"semantic": semantic}, {"semantic": semantic}], [(16, 24), (32, 48)], (4, 6))
    assert labels.shape == (2, 4, 6)
    torch.testing.assert_close(labels[0, :2, :3], semantic[::8, ::8])
    assert (labels[0, 2:] == IGNORE_LABEL).all() and (labels[0, :, 3:] == IGNORE_LABEL).all()
    torch.testing.assert_close(labels[1], semantic[::4, ::4])  # resized (nearest) to the 32x48 image


def test_bad_cascade_options():
    with pytest.raises(ConfigError, match="as many IoU thresholds"):
        heads(iou_thresholds=(0.5, 0.6))
    with pytest.raises(ConfigError, match="4 numbers"):
        heads(target_stds=((0.1, 0.1), (0.1, 0.1), (0.1, 0.1)))
    with pytest.raises(ConfigError, match="'semantic_num_classes'"):
        build_detector("htc", semantic_num_clases=5)
    with pytest.raises(ConfigError, match="hrnetv2p_w18"):
        build_detector("htc", "hrnetv2p_w40")
    assert math.isclose(1 / 0.033, build_detector("cascade_rcnn", backbone_overrides={
        "width": 2, "blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1, "out_channels": 8}
    ).roi_heads.box_coder.weights[0])


def test_stuff_maps_follow_the_image_and_bad_ones_are_named(synthetic_det_stuff, tmp_path):
    import cv2

    from hrnet.errors import DataError
    from hrnet.synthetic import synthesize
    from hrnet.tasks.detection.data import CocoDetection, train_transforms

    ann, images = synthetic_det_stuff / "annotations/instances_train.json", synthetic_det_stuff / "train"
    stuff = synthetic_det_stuff / "stuffthingmaps" / "train"
    flipped = CocoDetection(ann, images, train_transforms(48, 64, flip_prob=1.0), with_masks=True, stuff_dir=stuff)
    image, target = flipped[0]
    assert target["semantic"].shape == image.shape[1:] == (48, 64) and target["semantic"].dtype == torch.int64
    for mask, label in zip(target["masks"], target["labels"], strict=True):  # each object's pixels carry its label
        assert (target["semantic"][mask.bool()] == label - 1).float().mean() > 0.8
    assert (target["semantic"][target["masks"].sum(0) == 0] == 4).float().mean() > 0.95  # the background stuff
    with pytest.raises(DataError, match="stuff-map folder not found"):
        CocoDetection(ann, images, stuff_dir=tmp_path / "nowhere")
    bad = tmp_path / "stuff"
    bad.mkdir()
    cv2.imwrite(str(bad / "000000000001.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match=r"000000000001.png is 10x10 but its image is 128x96"):
        CocoDetection(ann, images, stuff_dir=bad)[0]
    with pytest.raises(DataError, match=r"stuff map not found: .*000000000002.png"):
        CocoDetection(ann, images, stuff_dir=bad)[1]
    with pytest.raises(DataError, match="--task det"):
        synthesize("seg", tmp_path / "seg", stuff_maps=True)
