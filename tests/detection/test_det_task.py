import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from hrnet.engine.config import load_config, read_yaml_tree, validate_config
from hrnet.engine.inference import run_evaluation
from hrnet.engine.task import get_task_class
from hrnet.errors import ConfigError, DataError
from hrnet.models import build_model
from hrnet.models.weights import load_weights
from hrnet.tasks.detection.inference import detect_people, draw_detections
from hrnet.tasks.detection.models import build_detector
from hrnet.tasks.detection.task import DetectionTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "detection"
SYNTHETIC_CONFIG = CONFIGS / "synthetic" / "faster_rcnn_tiny.yaml"


def synthetic_config(root: Path, tmp_path: Path, tiny_backbone: dict, **changes) -> object:
    raw = read_yaml_tree(SYNTHETIC_CONFIG)
    raw["model"]["overrides"]["backbone"] = tiny_backbone
    raw["data"].update(root=str(root), min_size=96, max_size=128)
    raw["train"].update(epochs=1, batch_size=2, max_iters_per_epoch=2, log_every=1, eval_every=1)
    raw["output_dir"] = str(tmp_path / "run")
    for key, value in changes.items():
        raw[key] = {**raw.get(key, {}), **value}
    return validate_config(raw)


@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.rglob("*.yaml") if not p.name.startswith("base_")),
                         ids=lambda p: p.stem)
def test_configs_validate_and_state_the_paper(path):
    cfg = load_config(path)
    task = get_task_class(cfg.task)(cfg)
    assert task.name == "detection" and task.main_metric == "bbox_AP"
    if "coco" in path.parts and cfg.model.name.startswith("centernet"):
        # CenterNet's recipe: Adam 1.25e-4 per 32 images, 140 epochs, lr x0.1 at 90 and 120, 512 crops
        assert "Paper Table 9" in path.read_text()
        assert (cfg.train.optimizer.name, cfg.train.optimizer.weight_decay) == ("adam", 0)
        assert cfg.train.optimizer.lr == pytest.approx(1.25e-4 * cfg.train.batch_size * 8 / 32)
        assert (cfg.train.epochs, cfg.train.schedule.milestones, cfg.data.min_size) == (140, [90, 120], 512)
    elif "coco" in path.parts:
        text = path.read_text()
        assert ("AP" in text and ("Paper Table" in text or "README" in text)) or "Not in the paper" in text
        assert cfg.train.optimizer.weight_decay == 1e-4 and cfg.train.schedule.warmup_iters == 500
        assert (cfg.data.min_size, cfg.data.max_size) == (800, 1333)
        epochs_to_steps = {12: [8, 11], 20: [16, 19], 24: [20, 23], 25: [120000, 160000], 28: [24, 27]}
        assert cfg.train.schedule.milestones == epochs_to_steps[cfg.train.epochs]


def test_data_section_is_strict(tmp_path):
    raw = read_yaml_tree(SYNTHETIC_CONFIG)
    raw["data"]["min_sise"] = 100
    with pytest.raises(ConfigError, match=r"unknown key 'data.min_sise'.*Did you mean 'min_size'"):
        validate_config(raw)
    raw = read_yaml_tree(SYNTHETIC_CONFIG)
    raw["data"].update(min_size=500, max_size=400)
    with pytest.raises(ConfigError, match="max_size"):
        validate_config(raw)


def test_task_trains_evaluates_and_writes_results(synthetic_det, tmp_path, tiny_backbone):
    """The engine's contract on the synthetic set, with Mask R-CNN: datasets, a loss step, COCO evaluation
    (bbox and segm) writing both results files."""
    cfg = synthetic_config(synthetic_det, tmp_path, tiny_backbone, model={
        "name": "mask_rcnn_hrnetv2p_w18",
        "overrides": {"num_classes": 4, "backbone": tiny_backbone, "box_detections_per_img": 10}})
    task = DetectionTask(cfg)
    model = task.build_model()
    assert model.predicts_masks and model.num_categories == 4
    train, val = task.build_dataset("train"), task.build_dataset("val")
    assert len(val) == 3 and "masks" in train[0][1]
    batch = task.collate_fn()([train[0], train[1]])
    loss, extras = task.compute_loss(model.train(), batch)
    assert loss.requires_grad and {"loss_classifier", "loss_mask", "loss_objectness"} <= set(extras)
    loss.backward()
    metrics = run_evaluation(task, model, DataLoader(val, batch_size=2, collate_fn=task.collate_fn()), tmp_path)
    assert {"bbox_AP", "bbox_AP50", "bbox_ARl", "segm_AP", "segm_ARl"} <= set(metrics)
    assert all(-1 <= value <= 1 for value in metrics.values())
    for iou_type in ("bbox", "segm"):
        assert isinstance(json.loads((tmp_path / f"detections_{iou_type}.json").read_text()), list)
    assert model.training  # as it was before the evaluation


def test_engine_trains_one_epoch_on_the_synthetic_set(synthetic_det, tmp_path, tiny_backbone):
    from hrnet.engine.trainer import train

    cfg = synthetic_config(synthetic_det, tmp_path, tiny_backbone)
    summary = train(cfg)
    assert summary["main_metric"] == "bbox_AP"
    assert (tmp_path / "run" / "eval" / "detections_bbox.json").is_file()


@pytest.mark.parametrize("name, overrides", [
    ("cascade_rcnn_hrnetv2p_w18", {}),
    ("cascade_mask_rcnn_hrnetv2p_w18", {}),
    ("htc_hrnetv2p_w18", {"semantic_num_classes": 5}),
    ("htc_hrnetv2p_w18", {"semantic": False}),
], ids=["cascade_rcnn", "cascade_mask_rcnn", "htc", "htc_without_semantic"])
def test_cascades_train_and_evaluate_with_the_engine(name, overrides, synthetic_det_stuff, tmp_path, tiny_backbone,
                                                      light_rcnn):
    """One iteration of each cascade through the engine (with HTC's semantic branch on the stuff maps, and
    without it), then COCO evaluation: bbox, and segm for the mask frameworks."""
    from hrnet.engine.trainer import train

    cfg = synthetic_config(synthetic_det_stuff, tmp_path, tiny_backbone, model={"name": name, "overrides": {
        "num_classes": 4, "backbone": tiny_backbone, "box_detections_per_img": 10, "mask_channels": 16, **light_rcnn,
        **overrides}},
        train={"max_iters_per_epoch": 1})
    summary = train(cfg)
    metrics = summary["last_metrics"]
    assert 0 <= metrics["bbox_AP"] <= 1 and (("segm_AP" in metrics) == (name != "cascade_rcnn_hrnetv2p_w18"))
    logged = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert ("loss_semantic_seg" in json.dumps(logged)) == ("semantic_num_classes" in overrides)


def test_htc_semantic_branch_needs_the_stuff_maps(synthetic_det, tmp_path, tiny_backbone):
    cfg = synthetic_config(synthetic_det, tmp_path, tiny_backbone, model={
        "name": "htc_hrnetv2p_w18", "overrides": {"num_classes": 4, "backbone": tiny_backbone}})
    with pytest.raises(DataError, match=r"stuff-map folder .*stuffthingmaps/train does not exist.*semantic: false"):
        DetectionTask(cfg).build_dataset("train")
    cfg = synthetic_config(synthetic_det, tmp_path, tiny_backbone, model={
        "name": "htc_hrnetv2p_w18", "overrides": {"num_classes": 4, "backbone": tiny_backbone, "semantic": False}})
    assert "semantic" not in DetectionTask(cfg).build_dataset("train")[0][1]


def test_multi_scale_training_draws_the_shorter_side(synthetic_det, tmp_path, tiny_backbone):
    cfg = synthetic_config(synthetic_det, tmp_path, tiny_backbone, data={"train_min_size": [40, 60],
                                                                         "train_max_size": 200})
    task = DetectionTask(cfg)
    dataset = task.build_dataset("train")
    sides = {min(dataset[i % len(dataset)][0].shape[1:]) for i in range(12)}
    assert sides <= set(range(40, 61)) and len(sides) > 1
    model = task.build_model().train()
    image = dataset[0][0]
    images, _ = model.transform([image], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}])
    assert images.image_sizes == [tuple(image.shape[1:])]  # the model keeps the drawn scale in training
    model.eval()
    assert min(model.transform([image])[0].image_sizes[0]) == 96  # and evaluates at data.min_size
    with pytest.raises(ConfigError, match="train_min_size"):
        synthetic_config(synthetic_det, tmp_path, tiny_backbone, data={"train_min_size": [60, 40]})


def test_number_of_categories_must_match(synthetic_det, tmp_path, tiny_backbone):
    cfg = synthetic_config(synthetic_det, tmp_path, tiny_backbone, model={"overrides": {"num_classes": 80}})
    with pytest.raises(DataError, match=r"instances_train.json has 4 categories but the model has 80"):
        DetectionTask(cfg).build_dataset("train")


def test_imagenet_backbone_weights_load_into_the_detector(tiny_backbone):
    """A classification checkpoint's backbone tensors land in the detector's backbone."""
    classifier = build_model("cls_hrnet_w18", **{k: v for k, v in tiny_backbone.items() if k != "out_channels"})
    detector = build_detector("faster_rcnn", backbone_overrides=tiny_backbone)
    load_weights(detector, classifier.state_dict(), verbose=False)
    torch.testing.assert_close(detector.backbone.conv1.weight, classifier.conv1.weight)
    torch.testing.assert_close(detector.backbone.stage4[0].branches[3][0].conv1.weight,
                               classifier.stage4[0].branches[3][0].conv1.weight)


class FixedDetector(nn.Module):
    """Returns the same detections for every image (to test what is done with a detector's output)."""

    def __init__(self, output: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.output = output
        self.seen: list[torch.Tensor] = []

    def forward(self, images):
        self.seen.extend(images)
        return [dict(self.output) for _ in images]


def test_detect_people_keeps_confident_persons():
    detector = FixedDetector({"boxes": torch.tensor([[1.0, 2, 30, 40], [5, 5, 9, 9], [0, 0, 4, 4], [2, 2, 8, 8]]),
                              "labels": torch.tensor([1, 1, 3, 1]), "scores": torch.tensor([0.9, 0.3, 0.95, 0.6])})
    image = np.zeros((48, 64, 3), np.uint8)
    image[..., 0] = 255
    boxes, scores = detect_people(detector, image, score_threshold=0.5)
    assert boxes.tolist() == [[1, 2, 30, 40], [2, 2, 8, 8]] and scores.tolist() == pytest.approx([0.9, 0.6])
    seen = detector.seen[0]
    assert seen.shape == (3, 48, 64) and seen.dtype == torch.float32 and seen[0].max() == 1 and seen[1].max() == 0


def test_draw_detections_draws_confident_boxes_and_masks():
    image = torch.zeros(3, 40, 60, dtype=torch.uint8)
    masks = torch.zeros(2, 1, 40, 60)
    masks[0, 0, 12:20, 12:20] = 0.9
    detection = {"boxes": torch.tensor([[10.0, 10, 30, 30], [40, 26, 55, 38]]), "labels": torch.tensor([2, 1]),
                 "scores": torch.tensor([0.8, 0.2]), "masks": masks}
    drawn = draw_detections(image, detection, ["person", "car"], score_threshold=0.5)
    assert drawn.dtype == torch.uint8 and drawn.shape == image.shape
    assert drawn[:, 10, 20].any() and drawn[:, 16, 16].any()  # box edge, mask inside
    assert not drawn[:, 25, 25].any() and not drawn[:, 26:39, 40:56].any()  # box interior, low score


def test_predict_writes_overlays_and_json(synthetic_det, tmp_path, tiny_backbone):
    cfg = synthetic_config(synthetic_det, tmp_path, tiny_backbone)
    task = DetectionTask(cfg)
    detector = FixedDetector({"boxes": torch.tensor([[4.0, 6, 40, 50]]), "labels": torch.tensor([2]),
                              "scores": torch.tensor([0.75])})
    written = task.predict(detector, [synthetic_det / "val"], tmp_path / "out", score_threshold="0.5")
    assert sorted(p.suffix for p in written) == [".json", ".png", ".png", ".png"]
    listing = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert listing[0]["names"] == ["square"] and listing[0]["boxes_xyxy"] == [[4.0, 6.0, 40.0, 50.0]]
    import cv2

    overlay = cv2.imread(str(written[0]))
    assert overlay.shape == (96, 128, 3)
    with pytest.raises(DataError, match="input not found"):
        task.predict(detector, [tmp_path / "nothing.jpg"], tmp_path / "out")
    with pytest.raises(ConfigError, match="unknown predict option"):
        task.predict(detector, [synthetic_det / "val"], tmp_path / "out", colour="red")
