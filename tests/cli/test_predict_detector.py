"""``hrnet predict POSE_CONFIG --detector DET`` runs a trained detector and poses the persons it finds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hrnet.cli.main import main
from hrnet.engine.build import build_task
from hrnet.engine.checkpoint import save_checkpoint
from hrnet.engine.config import load_config
from hrnet.errors import ConfigError
from hrnet.tasks.detection import person
from hrnet.tasks.detection.data import CategoryMap
from hrnet.tasks.detection.person import PersonDetector, load_person_detector, person_label
from hrnet.tasks.pose.datasets import read_image

IMAGES = ("000000000785.jpg", "000000000802.jpg")
#: a one-category (person) detection dataset: every detection of its model is a person
PERSON_ONLY = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def persons(predictions: list[dict]) -> list[dict]:
    """Every person of ``predictions.json`` (the Inferencer's schema) with its image's file name and frame,
    and its box as xywh (the box file's convention)."""
    found = []
    for record in predictions:
        for inst in record["instances"]:
            x1, y1, x2, y2 = inst["box"]
            found.append({**inst, "image": Path(record["file"]).name, "frame": record["frame"],
                          "xywh": [x1, y1, x2 - x1, y2 - y1]})
    return found


def write_yaml(path: Path, tree: dict) -> Path:
    path.write_text(yaml.safe_dump(tree))
    return path


def save_random_weights(config: Path, path: Path) -> Path:
    """A randomly initialised model of ``config`` saved as a training checkpoint."""
    torch.manual_seed(0)
    cfg = load_config(config)
    save_checkpoint(path, {"model": build_task(cfg).build_model().state_dict()})
    return path


@pytest.fixture()
def pose_config(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    config = write_yaml(tmp_path / "pose.yaml", {
        "task": "pose",
        "model": {"name": "pose_hrnet_w32",
                  "overrides": {"width": 4, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1}},
        "data": {"root": str(shared_data / "coco_keypoints"), "input_size": [64, 96]},
        "eval": {"batch_size": 16},
        "output_dir": str(tmp_path / "pose_run"),
        "device": "cpu",
    })
    return config, save_random_weights(config, tmp_path / "pose.pt")


def detector_config(tmp_path: Path, num_classes: int = 80, annotation: dict | None = None,
                    name: str = "faster_rcnn_hrnetv2p_w18") -> Path:
    """A tiny two-stage detector (Faster R-CNN by default) that keeps every detection (score threshold 0),
    at most 4 per image."""
    root = tmp_path / "det_data"
    if annotation is not None:
        (root / "annotations").mkdir(parents=True)
        (root / "annotations" / "val.json").write_text(json.dumps(annotation))
    return write_yaml(tmp_path / "detector.yaml", {
        "task": "detection",
        "model": {"name": name,
                  "overrides": {"num_classes": num_classes, "frozen_bn": False, "box_score_thresh": 0.0,
                                "box_detections_per_img": 4,
                                "backbone": {"width": 4, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1,
                                             "out_channels": 16}}},
        "data": {"root": str(root), "val_ann": "annotations/val.json", "min_size": 64, "max_size": 96},
        "output_dir": str(tmp_path / "det_run"),
        "device": "cpu",
    })


@pytest.mark.parametrize("detector", ["faster_rcnn_hrnetv2p_w18", "cascade_rcnn_hrnetv2p_w18"])
def test_predict_poses_the_persons_the_detector_finds(detector, shared_data, pose_config, tmp_path):
    pose_yaml, pose_weights = pose_config
    det_yaml = detector_config(tmp_path, num_classes=1, annotation=PERSON_ONLY, name=detector)
    det_weights = save_random_weights(det_yaml, tmp_path / "detector.pt")
    images = [shared_data / "coco_keypoints" / "val2017" / name for name in IMAGES]
    out = tmp_path / "out"
    code = main(["predict", str(pose_yaml), "--weights", str(pose_weights), *map(str, images), "--out", str(out),
                 "--detector", str(det_yaml), "--detector-weights", str(det_weights), "--detector-threshold", "0",
                 "--option", "overlays=false"])
    assert code == 0

    # the boxes file holds what the detector finds, converted to xywh
    detector = load_person_detector(det_yaml, det_weights, score_threshold=0.0)
    boxes_file = json.loads((out / "person_boxes.json").read_text())
    for name, path in zip(IMAGES, images, strict=True):
        boxes, scores = detector(read_image(path))
        written = [entry for entry in boxes_file if entry["image"] == name]
        assert len(written) == len(boxes) > 0
        np.testing.assert_allclose([entry["bbox"] for entry in written], boxes, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose([entry["score"] for entry in written], scores, rtol=1e-6)
        assert all(entry["category_id"] == 1 for entry in written)

    # and the poses are of those boxes (OKS-NMS may drop some)
    predictions = persons(json.loads((out / "predictions.json").read_text()))
    assert predictions
    for record in predictions:
        candidates = [entry["bbox"] for entry in boxes_file if entry["image"] == record["image"]]
        assert any(np.allclose(record["xywh"], box, atol=1e-2) for box in candidates)


def test_detector_boxes_reach_the_pose_model(shared_data, pose_config, tmp_path, monkeypatch):
    """A stand-in detector with one known box per image: every pose is of that box, and the detector ran
    once per image (folders expanded)."""
    pose_yaml, pose_weights = pose_config
    calls = []

    class KnownBox(PersonDetector):
        def __call__(self, image):
            calls.append(image.shape)
            return np.array([[280.0, 40, 160, 340]]), np.array([0.8])

    monkeypatch.setattr(person, "PersonDetector", KnownBox)
    det_yaml = detector_config(tmp_path)
    det_weights = save_random_weights(det_yaml, tmp_path / "detector.pt")
    folder = tmp_path / "images"
    folder.mkdir()
    for name in IMAGES:
        (folder / name).symlink_to(shared_data / "coco_keypoints" / "val2017" / name)
    out = tmp_path / "out"
    assert main(["predict", str(pose_yaml), "--weights", str(pose_weights), str(folder), "--out", str(out),
                 "--detector", str(det_yaml), "--detector-weights", str(det_weights)]) == 0
    assert len(calls) == len(IMAGES)
    predictions = persons(json.loads((out / "predictions.json").read_text()))
    assert sorted(r["image"] for r in predictions) == sorted(IMAGES)
    assert all(r["xywh"] == [280, 40, 160, 340] and r["box_score"] == 0.8 for r in predictions)
    assert (out / "000000000785_pose.png").is_file()


def test_detector_finds_the_persons_of_video_frames(shared_data, pose_config, tmp_path, monkeypatch):
    """Video frames go through the detector as they are read: every pose of every frame is of its box."""
    import cv2

    pose_yaml, pose_weights = pose_config
    calls = []

    class KnownBox(PersonDetector):
        def __call__(self, image):
            calls.append(image.shape)
            return np.array([[20.0, 10, 60, 100], [5.0, 5, 8, 8]]), np.array([0.9, 0.1])  # the 2nd is below 0.5

    monkeypatch.setattr(person, "PersonDetector", KnownBox)
    det_yaml = detector_config(tmp_path)
    det_weights = save_random_weights(det_yaml, tmp_path / "detector.pt")
    frame = cv2.imread(str(shared_data / "coco_keypoints" / "val2017" / IMAGES[0]))[:128, :128]
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (128, 128))
    for _ in range(3):
        writer.write(frame)
    writer.release()
    out = tmp_path / "out"
    assert main(["predict", str(pose_yaml), "--weights", str(pose_weights), str(video), "--out", str(out),
                 "--detector", str(det_yaml), "--detector-weights", str(det_weights),
                 "--option", "box_thre=0.5"]) == 0
    assert len(calls) == 3 and not (out / "person_boxes.json").exists()
    lines = (out / "clip_pose.jsonl").read_text().splitlines()
    predictions = persons([json.loads(line) for line in lines])
    assert sorted(r["frame"] for r in predictions) == [0, 1, 2]
    assert all(r["xywh"] == [20, 10, 60, 100] and r["box_score"] == 0.9 for r in predictions)
    assert (out / "clip_pose.mp4").is_file()


def test_person_detector_converts_xyxy_to_xywh():
    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, images):
            return [{"boxes": torch.tensor([[10.0, 20, 50, 100], [0, 0, 5, 5]]), "labels": torch.tensor([3, 2]),
                     "scores": torch.tensor([0.9, 0.95])} for _ in images]

    boxes, scores = PersonDetector(Fixed(), person_label=3, score_threshold=0.5)(np.zeros((120, 80, 3), np.uint8))
    assert boxes.tolist() == [[10, 20, 40, 80]] and scores.tolist() == pytest.approx([0.9])
    assert boxes.dtype == np.float64


def test_person_label_follows_the_category_map():
    categories = CategoryMap.from_categories([{"id": 1, "name": "person"}, {"id": 0, "name": "background-ish"}])
    assert person_label(categories, 2, "x") == 2  # ids sorted: 0 -> label 1, 1 (person) -> label 2
    assert person_label(None, 80, "x") == 1  # no annotation file: a COCO model
    with pytest.raises(ConfigError, match="cannot tell which of its 4 labels"):
        person_label(None, 4, "x")
    with pytest.raises(ConfigError, match=r"no person class .* 2 \(car\), 3 \(bus\)"):
        person_label(CategoryMap.from_categories([{"id": 3, "name": "bus"}, {"id": 2, "name": "car"}]), 2, "x")


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def test_detector_errors_name_the_problem(shared_data, pose_config, tmp_path, capsys):
    pose_yaml, pose_weights = pose_config
    image = str(shared_data / "coco_keypoints" / "val2017" / IMAGES[0])
    det_yaml = detector_config(tmp_path)
    base = ["predict", str(pose_yaml), "--weights", str(pose_weights), image, "--out", str(tmp_path / "out")]
    det = ["--detector", str(det_yaml), "--detector-weights", str(tmp_path / "detector.pt")]

    code, err = run_cli(["predict", str(det_yaml), "--weights", "w.pt", image, "--out", str(tmp_path), *det], capsys)
    assert code == 2 and "is a 'detection' config" in err
    code, err = run_cli([*base, "--detector", str(det_yaml)], capsys)
    assert code == 2 and "needs --detector-weights" in err
    code, err = run_cli([*base, *det, "--option", "boxes=b.json"], capsys)
    assert code == 2 and "not both" in err
    code, err = run_cli([*base, "--detector", str(pose_yaml), "--detector-weights", "w.pt"], capsys)
    assert code == 2 and "is a 'pose' config, not a detection one" in err

    no_person = detector_config(tmp_path, num_classes=1, annotation={
        "images": [], "annotations": [], "categories": [{"id": 2, "name": "bicycle"}]})
    code, err = run_cli([*base, "--detector", str(no_person), "--detector-weights", "w.pt"], capsys)
    assert code == 2 and "no person class" in err and "2 (bicycle)" in err


def test_centernet_finds_the_persons_for_pose(shared_data, pose_config, tmp_path):
    """A CenterNet detector config serves as the pose pipeline's person detector (its top-k boxes)."""
    pose_yaml, pose_weights = pose_config
    det_yaml = detector_config(tmp_path, num_classes=1, annotation=PERSON_ONLY)
    tree = yaml.safe_load(det_yaml.read_text())
    tree["model"] = {"name": "centernet_hrnetv2_w48",
                     "overrides": {"num_classes": 1, "detections_per_img": 3, "head_channels": 8,
                                   "backbone": {"width": 2, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1}}}
    tree["data"].update(min_size=64, max_size=64)
    write_yaml(det_yaml, tree)
    det_weights = save_random_weights(det_yaml, tmp_path / "centernet.pt")
    image = shared_data / "coco_keypoints" / "val2017" / IMAGES[0]
    out = tmp_path / "out"
    assert main(["predict", str(pose_yaml), "--weights", str(pose_weights), str(image), "--out", str(out),
                 "--detector", str(det_yaml), "--detector-weights", str(det_weights), "--detector-threshold", "0",
                 "--option", "overlays=false"]) == 0
    boxes_file = json.loads((out / "person_boxes.json").read_text())
    assert len(boxes_file) == 3 and all(entry["category_id"] == 1 for entry in boxes_file)
    detector = load_person_detector(det_yaml, det_weights, score_threshold=0.0)
    boxes, scores = detector(read_image(image))
    np.testing.assert_allclose([entry["bbox"] for entry in boxes_file], boxes, rtol=1e-6, atol=1e-4)


def save_torchvision_detector(name: str, path: Path, person_bias: float = 0.0) -> Path:
    """torchvision's detector ``name``, randomly initialised (nothing downloaded), saved as a state dict.
    ``person_bias`` (SSD only) raises the person's class logit so that it finds persons."""
    from torchvision.models import get_model

    torch.manual_seed(0)
    model = get_model(name, weights=None, weights_backbone=None)
    if person_bias:
        with torch.no_grad():
            for head in model.head.classification_head.module_list:
                head[-1].bias.view(-1, 91)[:, 1] += person_bias  # (anchors x 91 labels); label 1 is the person
    torch.save(model.state_dict(), path)
    return path


def _predict_with_ssdlite(shared_data, pose_config, tmp_path, *flags):
    """``hrnet predict`` of two COCO images with a saved torchvision SSDlite (person logit raised) as the
    person detector at threshold 0 and ``flags``; returns the images, the detector's weights, the output."""
    pose_yaml, pose_weights = pose_config
    det_weights = save_torchvision_detector("ssdlite320_mobilenet_v3_large", tmp_path / "ssdlite.pt", 5.0)
    images = [shared_data / "coco_keypoints" / "val2017" / name for name in IMAGES]
    out = tmp_path / "out"
    assert main(["predict", str(pose_yaml), "--weights", str(pose_weights), *map(str, images), "--out", str(out),
                 "--detector", "torchvision:ssdlite320_mobilenet_v3_large", "--detector-weights", str(det_weights),
                 "--detector-threshold", "0", *flags, "--option", "overlays=false"]) == 0
    return images, det_weights, out


def test_predict_with_a_torchvision_detector(shared_data, pose_config, tmp_path):
    """``--detector torchvision:NAME --detector-weights FILE``: the persons of that model (label 1 of COCO's
    91-index labels), at most ``--detector-max-persons`` per image, are the boxes the pose model runs on."""
    images, det_weights, out = _predict_with_ssdlite(shared_data, pose_config, tmp_path, "--detector-max-persons", "2")
    detector = load_person_detector("torchvision:ssdlite320_mobilenet_v3_large", det_weights, score_threshold=0.0,
                                    max_persons=2)
    boxes_file = json.loads((out / "person_boxes.json").read_text())
    for name, path in zip(IMAGES, images, strict=True):
        boxes, scores = detector(read_image(path))
        written = [entry for entry in boxes_file if entry["image"] == name]
        assert len(written) == len(boxes) == 2  # of the many persons found, the 2 best
        np.testing.assert_allclose([entry["bbox"] for entry in written], boxes, rtol=1e-6, atol=1e-4)
        assert scores[0] >= scores[1]
    predictions = persons(json.loads((out / "predictions.json").read_text()))
    assert predictions and all(any(np.allclose(r["xywh"], e["bbox"], atol=1e-2) for e in boxes_file)
                               for r in predictions)


class FakeDetections(torch.nn.Module):
    """A detector whose output is fixed: boxes of labels 1 (person) and 3 (car) with known scores."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [2, 2, 12, 12], [3, 3, 13, 13], [4, 4, 14, 14]])
        return [{"boxes": boxes, "labels": torch.tensor([1, 3, 1, 1, 1]),
                 "scores": torch.tensor([0.6, 0.99, 0.9, 0.3, 0.7])} for _ in images]


@pytest.mark.parametrize(("threshold", "max_persons", "expected"), [
    (0.5, None, [(2, 0.9), (4, 0.7), (0, 0.6)]),  # persons only (not the 0.99 car), best first
    (0.5, 2, [(2, 0.9), (4, 0.7)]),
    (0.0, None, [(2, 0.9), (4, 0.7), (0, 0.6), (3, 0.3)]),
    (0.95, None, []),
])
def test_person_detector_keeps_persons_above_threshold_best_first(threshold, max_persons, expected):
    boxes, scores = PersonDetector(FakeDetections(), person_label=1, score_threshold=threshold,
                                   max_persons=max_persons)(np.zeros((20, 20, 3), np.uint8))
    assert boxes.tolist() == [[x, x, 10, 10] for x, _ in expected]
    assert scores.tolist() == pytest.approx([s for _, s in expected])


def test_torchvision_detector_names_and_weights():
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_V2_Weights, SSDLite320_MobileNet_V3_Large_Weights

    from hrnet.tasks.detection.person import list_torchvision_detectors, torchvision_weights

    names = list_torchvision_detectors()
    assert {"torchvision:fasterrcnn_resnet50_fpn_v2", "torchvision:retinanet_resnet50_fpn_v2",
            "torchvision:ssdlite320_mobilenet_v3_large"} <= set(names)
    # torchvision's own weights resolve to its enum (nothing downloaded here)
    v2 = "torchvision:fasterrcnn_resnet50_fpn_v2"
    assert torchvision_weights(v2, "DEFAULT") is FasterRCNN_ResNet50_FPN_V2_Weights.DEFAULT
    assert torchvision_weights(v2, "COCO_V1") is FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1
    assert torchvision_weights(v2, "FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1") is \
        FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1
    assert torchvision_weights("torchvision:ssdlite320_mobilenet_v3_large", Path("COCO_V1")) is \
        SSDLite320_MobileNet_V3_Large_Weights.COCO_V1
    assert torchvision_weights(v2, "weights.pt") is None


def test_torchvision_detector_errors(tmp_path):
    from hrnet.errors import CheckpointError

    with pytest.raises(ConfigError, match=r"unknown torchvision detector .*Did you mean "
                                          r"'torchvision:fasterrcnn_resnet50_fpn_v2'"):
        load_person_detector("torchvision:fasterrcnn_resnet50_fpn_v3", "DEFAULT")
    with pytest.raises(ConfigError, match="name it 'torchvision:ssdlite320_mobilenet_v3_large'"):
        load_person_detector("ssdlite320_mobilenet_v3_large", "DEFAULT")
    with pytest.raises(CheckpointError, match=r"are no such file, nor one of torchvision's weights for it "
                                              r"\(DEFAULT, COCO_V1\)"):
        load_person_detector("torchvision:ssdlite320_mobilenet_v3_large", tmp_path / "missing.pt")
    # a state dict of another model: the missing and unexpected keys are named
    weights = save_torchvision_detector("ssdlite320_mobilenet_v3_large", tmp_path / "ssdlite.pt")
    with pytest.raises(CheckpointError, match=r"missing keys \(\d+\): .*unexpected keys \(\d+\): .*head"):
        load_person_detector("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", weights)
    with pytest.raises(ConfigError, match="max_persons must be at least 1"):
        load_person_detector("torchvision:ssdlite320_mobilenet_v3_large", weights, max_persons=0)


def test_cli_detector_name_errors(shared_data, pose_config, tmp_path, capsys):
    pose_yaml, pose_weights = pose_config
    image = str(shared_data / "coco_keypoints" / "val2017" / IMAGES[0])
    base = ["predict", str(pose_yaml), "--weights", str(pose_weights), image, "--out", str(tmp_path / "out")]
    code, err = run_cli([*base, "--detector", "torchvision:retinanet_resnet50", "--detector-weights", "DEFAULT"],
                        capsys)
    assert code == 2 and "Did you mean 'torchvision:retinanet_resnet50_fpn'" in err
    code, err = run_cli([*base, "--detector-max-persons", "3"], capsys)
    assert code == 2 and "--detector-max-persons needs --detector" in err


def test_torchvision_weights_by_name_reach_torchvision(monkeypatch):
    """``DEFAULT`` asks torchvision for its weights enum's default (stood in for here: no download), and a
    failed download is a CheckpointError naming the weights and their address."""
    import urllib.error

    from torchvision.models.detection import RetinaNet_ResNet50_FPN_V2_Weights

    from hrnet.errors import CheckpointError

    asked = []

    def fake_get_model(name, **kwargs):
        asked.append((name, kwargs))
        return FakeDetections()

    monkeypatch.setattr(person, "get_model", fake_get_model)
    detector = load_person_detector("torchvision:retinanet_resnet50_fpn_v2", "DEFAULT", max_persons=1)
    assert asked == [("retinanet_resnet50_fpn_v2", {"weights": RetinaNet_ResNet50_FPN_V2_Weights.COCO_V1})]
    boxes, scores = detector(np.zeros((20, 20, 3), np.uint8))
    assert boxes.tolist() == [[2, 2, 10, 10]] and scores.tolist() == pytest.approx([0.9])

    def offline(name, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(person, "get_model", offline)
    with pytest.raises(CheckpointError, match=r"cannot fetch torchvision's .*COCO_V1 weights of "
                                              r"retinanet_resnet50_fpn_v2 from https://.*give the file instead"):
        load_person_detector("torchvision:retinanet_resnet50_fpn_v2", "COCO_V1")


def test_predict_with_the_detector_in_onnxruntime(shared_data, pose_config, tmp_path):
    """``--detector-path onnxruntime`` runs the torchvision detector exported to ONNX Runtime: the persons
    written score as the eager model's (this random model scores many boxes alike, so which of them are
    the best three is not defined: their scores are compared, and the boxes lie in the image)."""
    pytest.importorskip("onnxruntime")
    images, det_weights, out = _predict_with_ssdlite(shared_data, pose_config, tmp_path, "--detector-max-persons", "3",
                                                     "--detector-path", "onnxruntime")
    eager = load_person_detector("torchvision:ssdlite320_mobilenet_v3_large", det_weights, score_threshold=0.0,
                                 max_persons=3)
    boxes_file = json.loads((out / "person_boxes.json").read_text())
    for name, path in zip(IMAGES, images, strict=True):
        image = read_image(path)
        _, scores = eager(image)
        written = [entry for entry in boxes_file if entry["image"] == name]
        assert len(written) == len(scores) == 3
        np.testing.assert_allclose([entry["score"] for entry in written], scores, atol=1e-5)
        xywh = np.array([entry["bbox"] for entry in written])
        assert (xywh[:, :2] >= -1e-3).all() and (xywh[:, 0] + xywh[:, 2] <= image.shape[1] + 1e-3).all()
        assert (xywh[:, 1] + xywh[:, 3] <= image.shape[0] + 1e-3).all()


def test_detector_path_needs_a_detector(pose_config, tmp_path, capsys):
    pose_yaml, pose_weights = pose_config
    assert main(["predict", str(pose_yaml), "--weights", str(pose_weights), "x.jpg", "--out", str(tmp_path),
                 "--detector-path", "onnxruntime"]) != 0
    assert "--detector-path needs --detector" in capsys.readouterr().err
