import math

import pytest
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.ops.poolers import initLevelMapper

from hrnet.errors import ConfigError
from hrnet.models import build_model
from hrnet.tasks.detection.data import CocoDetection, collate_detection, train_transforms
from hrnet.tasks.detection.models import (
    ARCHITECTURES,
    BACKBONES,
    build_detector,
    fcos_anchor_generator,
    freeze_batchnorm,
    list_detectors,
    retinanet_anchor_generator,
    rpn_anchor_generator,
    split_detector_name,
    trainable_params,
)


def test_every_full_width_detector_builds():
    """All 26 presets build at full width (on the meta device: no memory, no forward); the detector's
    backbone is the preset's with its BN frozen."""
    for backbone in BACKBONES:
        with torch.device("meta"):
            body = build_model(backbone)
        bn_affine = sum(2 * m.num_features for m in body.modules() if isinstance(m, nn.BatchNorm2d))
        counts = {}
        for arch in (arch for arch, spec in ARCHITECTURES.items() if backbone in spec.backbones):
            with torch.device("meta"):
                model = build_detector(arch, backbone, num_classes=80)
            assert trainable_params(model.backbone) == trainable_params(body) - bn_affine
            counts[arch] = trainable_params(model)
        assert counts["fcos"] < counts["retinanet"] < counts["faster_rcnn"] < counts["mask_rcnn"] \
            < counts["cascade_rcnn"]
        if "htc" in counts:
            assert counts["cascade_rcnn"] < counts["cascade_mask_rcnn"] < counts["htc"]


def test_anchors_are_eight_strides_with_three_ratios():
    generator = rpn_anchor_generator()
    assert generator.sizes == ((32,), (64,), (128,), (256,), (512,))
    for size, anchors in zip((32, 64, 128, 256, 512), generator.cell_anchors, strict=True):
        widths, heights = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        torch.testing.assert_close(heights / widths, torch.tensor([0.5, 1.0, 2.0]), rtol=0.05, atol=0)
        torch.testing.assert_close(widths * heights, torch.full((3,), float(size**2)), rtol=0.05, atol=0)
    retina = retinanet_anchor_generator()
    assert retina.num_anchors_per_location() == [9] * 5
    assert retina.sizes[0] == pytest.approx((32, 32 * 2 ** (1 / 3), 32 * 2 ** (2 / 3)))
    assert fcos_anchor_generator().sizes == ((8,), (16,), (32,), (64,), (128,))


def test_roi_level_rule_is_mmdetection_s():
    """torchvision's FPN rule on p2-p5 equals mmdetection's floor(log2(sqrt(wh) / 56)) clipped to 0..3."""
    mapper = initLevelMapper(2, 5)
    sides = torch.tensor([4.0, 50, 55.9, 56.1, 111, 113, 223, 225, 447, 449, 900, 2000])
    boxes = torch.stack([torch.zeros_like(sides), torch.zeros_like(sides), sides, sides], dim=1)
    expected = [min(max(math.floor(math.log2(s / 56 + 1e-6)), 0), 3) for s in sides.tolist()]
    assert mapper([boxes]).tolist() == expected


def test_frozen_batchnorm_keeps_keys_statistics_and_outputs(tiny_backbone):
    model = build_model("hrnetv2p_w18", **tiny_backbone).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 2)
    x = torch.randn(1, 3, 64, 64)
    expected = model(x)
    keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    frozen = freeze_batchnorm(model).train()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in frozen.modules())
    assert set(frozen.state_dict()) == keys
    for name, value in frozen(x).items():
        torch.testing.assert_close(value, expected[name], rtol=1e-4, atol=1e-5)


def test_pyramid_levels_of_two_and_one_stage_detectors(tiny_backbone):
    x = torch.randn(1, 3, 256, 256)
    two = build_detector("faster_rcnn", backbone_overrides=tiny_backbone).backbone(x)
    one = build_detector("fcos", backbone_overrides=tiny_backbone).backbone(x)
    assert {k: v.shape[-1] for k, v in two.items()} == {"p2": 64, "p3": 32, "p4": 16, "p5": 8, "p6": 4}
    assert {k: v.shape[-1] for k, v in one.items()} == {"p3": 32, "p4": 16, "p5": 8, "p6": 4, "p7": 2}


def test_official_test_settings(tiny_backbone):
    faster = build_detector("faster_rcnn", backbone_overrides=tiny_backbone)
    assert faster.rpn._pre_nms_top_n == {"training": 2000, "testing": 2000}
    assert faster.rpn._post_nms_top_n == {"training": 2000, "testing": 2000}
    assert (faster.roi_heads.score_thresh, faster.roi_heads.nms_thresh, faster.roi_heads.detections_per_img) == \
        (0.05, 0.5, 100)
    assert faster.roi_heads.box_roi_pool.featmap_names == ["p2", "p3", "p4", "p5"]
    mask = build_detector("mask_rcnn", backbone_overrides=tiny_backbone)
    assert mask.roi_heads.mask_roi_pool.output_size == (14, 14)
    fcos = build_detector("fcos", num_classes=3, backbone_overrides=tiny_backbone)
    assert (fcos.score_thresh, fcos.nms_thresh, fcos.center_sampling_radius) == (0.05, 0.6, math.inf)
    assert fcos.head.classification_head.num_classes == 4
    assert (faster.transform.min_size, faster.transform.max_size) == ((800,), 1333)


def test_preset_names_build_and_measure_as_their_parts():
    """A preset name alone is the architecture with its backbone, for building and for measuring; the
    package exports the name helpers; Cascade R-CNN W18 measures within 1 % of Table 7's 55.1M."""
    import hrnet.tasks.detection as detection

    assert detection.split_detector_name is split_detector_name
    assert detection.measure_detector("cascade_rcnn_hrnetv2p_w18") == detection.measure_detector(
        "cascade_rcnn", "hrnetv2p_w18")
    params, gflops = detection.measure_detector("cascade_rcnn_hrnetv2p_w18")
    assert abs(params / 1e6 - 55.1) / 55.1 < 0.01 and gflops > 0
    with torch.device("meta"):
        htc = build_detector("htc_hrnetv2p_w32", num_classes=80)
        centernet = build_detector("centernet")
    assert htc.arch == "htc" and trainable_params(htc) == detection.measure_detector("htc", "hrnetv2p_w32")[0]
    assert centernet.arch == "centernet" and centernet.backbone.out_channels == 15 * 48  # hrnetv2_w48
    with pytest.raises(ConfigError, match="preset that names its backbone.*'cascade_rcnn' with the backbone"):
        build_detector("cascade_rcnn_hrnetv2p_w32", "hrnetv2p_w18")
    with pytest.raises(ConfigError, match="Did you mean 'cascade_rcnn_hrnetv2p_w32'"):
        build_detector("cascade_rcnn_hrnetv2p_w33")


def test_names_and_errors():
    assert len(list_detectors()) == 28 and "mask_rcnn_hrnetv2p_w40" in list_detectors()
    assert len([name for name in list_detectors() if "hrnetv2p" in name]) == 26
    assert "htc_hrnetv2p_w48" in list_detectors() and "htc_hrnetv2p_w40" not in list_detectors()
    assert split_detector_name("mask_rcnn_hrnetv2p_w40") == ("mask_rcnn", "hrnetv2p_w40")
    with pytest.raises(ConfigError, match="faster_rcnn_hrnetv2p_w18"):
        split_detector_name("faster_rcnn_hrnetv2p_w81")
    with pytest.raises(ConfigError, match="Did you mean 'retinanet'"):
        build_detector("retinnet")
    with pytest.raises(ConfigError, match="hrnetv2p_w32"):
        build_detector("fcos", "hrnetv2p_w23")
    # torchvision's detectors take **kwargs and would ignore a misspelt option
    with pytest.raises(ConfigError, match=r"\['box_score_tresh'\] of torchvision's MaskRCNN.*'box_score_thresh'"):
        build_detector("mask_rcnn", box_score_tresh=0.3)
    with pytest.raises(ConfigError, match="'score_thresh'"):
        build_detector("fcos", box_score_thresh=0.3)  # a two-stage option


@pytest.fixture(scope="module")
def mixed_batch(coco_detection, synthetic_det):
    """A COCO sample image (80 categories) and a synthetic one (labels 1..4 of the 80), with masks."""
    shared = CocoDetection(coco_detection / "annotations/instances_val2017.json", coco_detection / "val2017",
                           train_transforms(96, 128), with_masks=True)
    synthetic = CocoDetection(synthetic_det / "annotations/instances_train.json", synthetic_det / "train",
                              train_transforms(96, 128), with_masks=True)
    return collate_detection([shared[1], synthetic[0]])


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("arch", ["faster_rcnn", "mask_rcnn", "fcos", "retinanet"])  # cascades: test_det_cascade
def test_detector_trains_and_infers(arch, backbone, mixed_batch, tiny_backbone, light_rcnn):
    """Every detector x backbone preset, at an eighth of its width: one SGD step on a batch of a COCO sample
    image and a synthetic one, then inference on both."""
    width = int(backbone.removeprefix("hrnetv2p_w")) // 8
    options = light_rcnn if arch in ("faster_rcnn", "mask_rcnn") else {}
    torch.manual_seed(0)
    model = build_detector(arch, backbone, 80, min_size=96, max_size=128,
                           backbone_overrides={**tiny_backbone, "width": width}, **options)
    assert model.backbone.neck.reduction_conv.in_channels == 15 * width
    images, targets = mixed_batch
    if not ARCHITECTURES[arch].predicts_masks:
        targets = [{k: v for k, v in t.items() if k != "masks"} for t in targets]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = model(images, targets)
    loss = sum(losses.values())
    assert torch.isfinite(loss) and loss > 0
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    model.eval()
    with torch.no_grad():
        outputs = model(images)
    for image, output in zip(images, outputs, strict=True):
        assert set(output) >= {"boxes", "labels", "scores"}
        assert output["boxes"].shape[1] == 4 and len(output["labels"]) == len(output["scores"])
        assert ((output["labels"] >= 0) & (output["labels"] <= 80)).all()
        if arch == "mask_rcnn":
            assert output["masks"].shape[1:] == (1, *image.shape[1:])
