"""CenterNet on HRNetV2: its definitions pinned on hand-made cases, its training path and its detector contract."""

import math
from pathlib import Path

import pytest
import torch
from torchvision import tv_tensors

from hrnet.engine.config import read_yaml_tree, validate_config
from hrnet.errors import ConfigError
from hrnet.tasks.detection.centernet import (
    HEATMAP_PRIOR_BIAS,
    CenterNet,
    CenterNetTrainTransform,
    decode_detections,
    encode_targets,
    focal_loss,
    gaussian_radius,
    regression_l1_loss,
)
from hrnet.tasks.detection.data import CocoDetection
from hrnet.tasks.detection.evaluation import detections_to_coco, evaluate_coco
from hrnet.tasks.detection.models import ARCHITECTURES, build_detector, list_detectors, trainable_params

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "detection"
TINY = {"width": 2, "blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1}


def tiny_centernet(num_classes: int = 4, **options) -> CenterNet:
    torch.manual_seed(0)
    return build_detector("centernet", "hrnetv2_w48", num_classes, min_size=96, backbone_overrides=TINY,
                          head_channels=16, **options)


def test_presets_build_at_full_width_with_trained_bn():
    assert {"centernet_hrnetv2_w48", "centernet_hrnetv2_w64"} <= set(list_detectors())
    assert ARCHITECTURES["centernet"].backbones == ("hrnetv2_w48", "hrnetv2_w64")
    for width, channels in ((48, 720), (64, 960)):
        with torch.device("meta"):
            model = build_detector("centernet", f"hrnetv2_w{width}")
        assert isinstance(model, CenterNet) and model.arch == "centernet" and model.num_categories == 80
        assert not model.predicts_masks and model.backbone.out_channels == channels
        assert model.head.heatmap[0].out_channels == 256 and model.head.heatmap[-1].out_channels == 80
        assert any(p.requires_grad for n, p in model.backbone.named_parameters() if "bn" in n)  # BN trained
        assert trainable_params(model) == sum(p.numel() for p in model.parameters())


def test_heatmap_bias_is_the_prior_of_one_tenth():
    model = tiny_centernet()
    bias = model.head.heatmap[-1].bias
    assert HEATMAP_PRIOR_BIAS == -2.19 and torch.equal(bias, torch.full_like(bias, -2.19))
    assert torch.sigmoid(bias[0]).item() == pytest.approx(0.1, abs=1e-3)
    assert not model.head.size[-1].bias.any() and not model.head.offset[-1].bias.any()


def test_input_size_must_be_a_multiple_of_the_stride():
    with pytest.raises(ConfigError, match=r"input size 511 is not a multiple of .* 32.* 480 or 512"), \
            torch.device("meta"):
        build_detector("centernet", "hrnetv2_w48", min_size=511)
    with pytest.raises(ConfigError, match="hrnetv2_w64"):
        build_detector("centernet", "hrnetv2p_w48")


def test_focal_loss_on_a_hand_computed_case():
    probabilities = torch.tensor([[[[0.5, 0.2], [0.1, 0.9]]]])
    target = torch.tensor([[[[1.0, 0.5], [0.0, 0.2]]]])
    # one positive: (1 - 0.5)^2 log 0.5; negatives weighted (1 - t)^4 p^2 log(1 - p)
    positive = 0.25 * math.log(0.5)
    negatives = 0.0625 * 0.04 * math.log(0.8) + 1 * 0.01 * math.log(0.9) + 0.4096 * 0.81 * math.log(0.1)
    assert focal_loss(probabilities, target).item() == pytest.approx(-(positive + negatives) / 1, rel=1e-5)
    assert focal_loss(probabilities, target).item() == pytest.approx(0.938848, abs=1e-5)
    # without positives the negative sum is not normalised
    assert focal_loss(probabilities, target * 0.5).item() == pytest.approx(
        -(0.5**4 * 0.25 * math.log(0.5) + 0.75**4 * 0.04 * math.log(0.8) + 0.01 * math.log(0.9)
          + 0.9**4 * 0.81 * math.log(0.1)), rel=1e-5)


def test_size_and_offset_l1_loss_reads_the_object_cells():
    prediction = torch.arange(24, dtype=torch.float32).reshape(1, 2, 3, 4)  # channel 0: 0..11, 1: 12..23
    index = torch.tensor([[5, 0]])
    target = torch.tensor([[[4.0, 20.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, False]])  # the second object is padding
    # |5 - 4| + |17 - 20| over 2 values
    assert regression_l1_loss(prediction, index, target, mask).item() == pytest.approx(4 / 2, rel=1e-4)
    assert regression_l1_loss(prediction, index, target, mask * False).item() == 0


def test_gaussian_radius_as_centernet_defines_it():
    # CenterNet's three "roots" (b + sqrt(b^2 - 4ac)) / 2 for h=10, w=20 at IoU 0.7, by hand:
    # (30 + sqrt(900 - 4 * 200 * 0.3 / 1.7)) / 2 = 28.7735, (60 + sqrt(3600 - 16 * 60)) / 2 = 55.6907,
    # (-42 + sqrt(1764 + 4 * 2.8 * 60)) / 2 = 3.6779 -> the smallest
    assert gaussian_radius(10, 20) == pytest.approx(3.677925, abs=1e-5)
    assert gaussian_radius(20, 10) == gaussian_radius(10, 20)
    # min_overlap 0.5: (-30 + sqrt(900 + 4 * 2 * 100)) / 2 = 5.6155
    assert gaussian_radius(10, 20, min_overlap=0.5) == pytest.approx(5.615528, abs=1e-5)
    assert gaussian_radius(100, 100) > gaussian_radius(10, 10) * 9


def test_targets_of_one_box():
    boxes = torch.tensor([[4.0, 8.0, 84.0, 50.4]])  # cells (1, 2)-(21, 12.6): 20 x 10.6, centre (11, 7.3)
    target = encode_targets(boxes, torch.tensor([2]), 3, (32, 32))
    heatmap = target["heatmap"]
    assert heatmap.shape == (3, 32, 32) and not heatmap[0].any() and not heatmap[2].any()
    assert int(gaussian_radius(11, 20)) == 3  # ceil(10.6) = 11: a 7x7 Gaussian of sigma 7/6
    assert heatmap[1, 7, 11] == 1 and heatmap[1].gt(0).sum() == 49
    assert heatmap[1, 7, 12].item() == pytest.approx(math.exp(-18 / 49))
    assert heatmap[1, 8, 12].item() == pytest.approx(math.exp(-36 / 49))
    assert heatmap[1, 10, 14].item() == pytest.approx(math.exp(-18 * 18 / 49))
    assert target["index"].tolist() == [7 * 32 + 11]
    torch.testing.assert_close(target["size"], torch.tensor([[20.0, 10.6]]))
    torch.testing.assert_close(target["offset"], torch.tensor([[0.0, 0.3]]), atol=1e-5, rtol=0)
    # boxes are clipped to the map; one left without area is skipped
    clipped = encode_targets(torch.tensor([[100.0, 0.0, 140.0, 20.0], [130.0, 0.0, 140.0, 9.0]]),
                             torch.tensor([1, 1]), 1, (8, 32))
    torch.testing.assert_close(clipped["size"], torch.tensor([[6.0, 5.0]]))  # x clipped at 31 cells
    with pytest.raises(ValueError, match=r"1\.\.3"):
        encode_targets(boxes, torch.tensor([4]), 3, (32, 32))


def test_decoder_on_a_crafted_heatmap():
    heatmap = torch.zeros(1, 2, 8, 8)
    heatmap[0, 0, 2, 3] = 0.9
    heatmap[0, 0, 2, 4] = 0.8  # beside a higher peak: not a peak
    heatmap[0, 1, 5, 6] = 0.7
    heatmap[0, 1, 0, 0] = 0.3  # a lone, lower peak of the second category
    size, offset = torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8)
    size[0, :, 2, 3], offset[0, :, 2, 3] = torch.tensor([4.0, 2.0]), torch.tensor([0.5, 0.25])
    size[0, :, 5, 6], offset[0, :, 5, 6] = torch.tensor([2.0, 6.0]), torch.tensor([0.0, 0.5])
    boxes, scores, labels = decode_detections(heatmap, size, offset, topk=3, stride=4)
    torch.testing.assert_close(scores, torch.tensor([[0.9, 0.7, 0.3]]))
    assert labels.tolist() == [[1, 2, 2]]
    # centre (3.5, 2.25) +- (2, 1) cells, x 4 pixels; centre (6, 5.5) +- (1, 3)
    torch.testing.assert_close(boxes[0, :2], torch.tensor([[6.0, 5.0, 22.0, 13.0], [20.0, 10.0, 28.0, 34.0]]))
    boxes, scores, labels = decode_detections(heatmap, size, offset, topk=100)
    assert boxes.shape == (1, 100, 4) and scores[0, 3:].eq(0).all()  # top 100 kept, no NMS, no threshold


def test_ground_truth_through_the_decoder_scores_ap_one(coco_detection):
    """Ideal heatmaps, sizes and offsets of each val image (CenterNet's targets) decoded and evaluated like a
    model's outputs give AP 1 -- on every image where no two objects share a centre cell: the size and
    offset maps hold one box per cell (as CenterNet's), so of two objects of different categories centred
    in one cell only the last one keeps its size (3 objects in 2 of the 50 images).
    The maps extend a cell past the image: CenterNet clips targets to the last cell, which would trim the
    two boxes touching the bottom of the 479-high image."""
    dataset = CocoDetection(coco_detection / "annotations/instances_val2017.json", coco_detection / "val2017")
    outputs, image_ids, shared_cells = [], [], {}
    for index in range(len(dataset)):
        image, target = dataset[index]
        height, width = ((side + 4) // 4 + 1 for side in image.shape[-2:])
        encoded = encode_targets(target["boxes"], target["labels"], len(dataset.categories), (height, width))
        assert len(encoded["index"]) == len(target["boxes"])
        size, offset = torch.zeros(2, height * width), torch.zeros(2, height * width)
        size[:, encoded["index"]], offset[:, encoded["index"]] = encoded["size"].T, encoded["offset"].T
        boxes, scores, labels = decode_detections(encoded["heatmap"][None], size.view(1, 2, height, width),
                                                  offset.view(1, 2, height, width))
        outputs.append({"boxes": boxes[0], "scores": scores[0], "labels": labels[0]})
        image_ids.append(target["image_id"])
        shared_cells[target["image_id"]] = len(encoded["index"]) - len(encoded["index"].unique())
    results = detections_to_coco(outputs, image_ids, dataset.categories)["bbox"]
    assert sum(shared_cells.values()) == 3 and sum(map(bool, shared_cells.values())) == 2
    distinct = [image_id for image_id in image_ids if not shared_cells[image_id]]
    stats, _ = evaluate_coco(dataset.coco, results, "bbox", distinct)
    for name in ("AP", "AP50", "AP75", "APs", "APm", "APl"):
        assert stats[f"bbox_{name}"] == pytest.approx(1.0), name
    stats, _ = evaluate_coco(dataset.coco, results, "bbox", image_ids)
    assert stats["bbox_AP50"] == pytest.approx(1.0) and 0.995 < stats["bbox_AP"] < 1


def test_train_crop_moves_boxes_with_the_pixels():
    """A white box on black, through random crops and flips: the warped box still frames the white pixels."""
    image = torch.zeros(3, 120, 160, dtype=torch.uint8)
    image[:, 30:70, 50:130] = 255
    target = {"boxes": tv_tensors.BoundingBoxes(torch.tensor([[50.0, 30.0, 130.0, 70.0]]), format="XYXY",
                                                canvas_size=(120, 160)), "labels": torch.tensor([3]), "image_id": 1}
    transform = CenterNetTrainTransform(96, flip_prob=0.5, color=False)
    torch.manual_seed(0)
    for _ in range(8):
        warped, out = transform(tv_tensors.Image(image), target)
        assert warped.shape == (3, 96, 96) and warped.dtype == torch.float32 and warped.max() <= 1
        if not len(out["boxes"]):
            continue
        x1, y1, x2, y2 = out["boxes"][0].round().int().tolist()
        assert out["labels"].tolist() == [3] and tuple(out["boxes"].canvas_size) == (96, 96)
        assert warped[0, y1 + 1:y2 - 1, x1 + 1:x2 - 1].min() > 0.9  # inside: white
        outside = warped[0].clone()
        outside[max(y1 - 1, 0):y2 + 1, max(x1 - 1, 0):x2 + 1] = 0
        assert outside.max() < 0.1
    jittered, _ = CenterNetTrainTransform(96)(tv_tensors.Image(image), target)
    assert not torch.equal(jittered.round(), jittered)  # colour jitter and lighting change the values


def test_crop_scales_set_the_crop_side():
    """With one crop scale of 1.0 the crop covers the longer side: a 160-wide image's 40-wide box comes
    out 40 x 96 / 160 = 24 wide in the 96 x 96 crop (when the crop keeps it whole)."""
    image = torch.zeros(3, 120, 160, dtype=torch.uint8)
    target = {"boxes": tv_tensors.BoundingBoxes(torch.tensor([[60.0, 50.0, 100.0, 70.0]]), format="XYXY",
                                                canvas_size=(120, 160)), "labels": torch.tensor([1]), "image_id": 1}
    transform = CenterNetTrainTransform(96, flip_prob=0.0, color=False, scales=(1.0,))
    torch.manual_seed(0)
    widths = {round(float(out["boxes"][0, 2] - out["boxes"][0, 0]), 3)
              for _, out in (transform(tv_tensors.Image(image), target) for _ in range(6)) if len(out["boxes"])}
    assert widths == {24.0}
    with pytest.raises(ConfigError, match="crop scales"):
        CenterNetTrainTransform(96, scales=())


def _tiny_config(root, tmp_path, data=None, **train):
    raw = read_yaml_tree(CONFIGS / "synthetic" / "centernet_tiny.yaml")
    raw["model"]["overrides"].update(backbone=TINY, head_channels=16)
    raw["data"].update(root=str(root), min_size=96, max_size=96, **(data or {}))
    raw["train"].update(epochs=1, batch_size=2, max_iters_per_epoch=2, log_every=1, eval_every=1, **train)
    raw["output_dir"] = str(tmp_path / "run")
    return validate_config(raw)


def test_engine_trains_and_evaluates_centernet(synthetic_det, tmp_path):
    from hrnet.engine.trainer import train
    from hrnet.tasks.detection.task import DetectionTask

    cfg = _tiny_config(synthetic_det, tmp_path)
    task = DetectionTask(cfg)
    sample, _ = task.build_dataset("train")[0]
    assert sample.shape == (3, 96, 96)  # the square training crop
    summary = train(cfg)
    assert summary["main_metric"] == "bbox_AP" and summary["steps"] == 2
    assert (tmp_path / "run" / "eval" / "detections_bbox.json").is_file()
    # the config's crop recipe reaches the training transform, its model recipe the model
    crop = DetectionTask(_tiny_config(synthetic_det, tmp_path, data={"crop_scales": [0.9, 1.1],
                                                                      "color_jitter": False}))._train_transforms()
    assert crop.scales == (0.9, 1.1) and crop.color is False
    model = task.build_model()
    assert model.head.heatmap[0].out_channels == 16 and model.num_categories == 4


def test_batches_pad_as_centernet_and_boxes_stay_in_image_pixels():
    model = tiny_centernet().eval()
    batch = model._batch([torch.rand(3, 90, 128), torch.rand(3, 64, 70)])
    assert batch.shape == (2, 3, 96, 160)  # (90 | 31) + 1, (128 | 31) + 1
    black = (0 - model.image_mean) / model.image_std  # padded as the training crops are: black
    torch.testing.assert_close(batch[1, :, 64:, :], black.expand(3, 32, 160))
    model.train()
    assert model._batch([torch.rand(3, 96, 96)]).shape == (1, 3, 96, 96)
    with pytest.raises(ValueError, match="targets"):
        model([torch.rand(3, 96, 96)])


def test_imagenet_backbone_weights_load_into_centernet():
    """The COCO recipes start from an ImageNet HRNet-C checkpoint: its backbone tensors land in CenterNet's."""
    from hrnet.models import build_model
    from hrnet.models.weights import load_weights

    classifier = build_model("cls_hrnet_w18", **TINY)
    detector = build_detector("centernet", "hrnetv2_w48", backbone_overrides=TINY, min_size=96)
    load_weights(detector, classifier.state_dict(), verbose=False)
    torch.testing.assert_close(detector.backbone.conv1.weight, classifier.conv1.weight)
    torch.testing.assert_close(detector.backbone.stage4[0].branches[3][0].conv1.weight,
                               classifier.stage4[0].branches[3][0].conv1.weight)
