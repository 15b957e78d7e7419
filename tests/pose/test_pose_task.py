"""The pose task through the engine: config validation, one training epoch, evaluation, prediction."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from torch.utils.data import DataLoader

from hrnet.engine.config import validate_config
from hrnet.engine.inference import evaluate, predict
from hrnet.engine.trainer import train
from hrnet.errors import ConfigError, DataError
from hrnet.tasks.pose.task import PoseTask

TINY_MODEL = {"name": "pose_hrnet_w32",
              "overrides": {"width": 8, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1}}


def coco_config(shared_data: Path, tmp_path: Path, **data) -> dict:
    return {
        "task": "pose",
        "model": copy.deepcopy(TINY_MODEL),
        "data": {"root": str(shared_data / "coco_keypoints"), "input_size": [64, 96],
                 "train_ann": "annotations/person_keypoints_train2017.json",
                 "val_ann": "annotations/person_keypoints_val2017.json", **data},
        "train": {"epochs": 1, "batch_size": 16, "workers": 0,
                  "optimizer": {"name": "adam", "lr": 1e-3}, "log_every": 1},
        "eval": {"batch_size": 32, "workers": 0},
        "output_dir": str(tmp_path / "run"),
        "device": "cpu",
    }


def test_config_sections_are_validated(shared_data, tmp_path):
    cfg = validate_config(coco_config(shared_data, tmp_path))
    assert cfg.data.codec.name == "msra" and cfg.eval.oks_thre == 0.9 and cfg.loss.name == "mse"
    raw = coco_config(shared_data, tmp_path, val_boxs="gt")
    with pytest.raises(ConfigError, match="val_boxes"):
        validate_config(raw)
    raw = coco_config(shared_data, tmp_path, codec={"name": "darkk"})
    with pytest.raises(ConfigError, match="data.codec.name"):
        validate_config(raw)
    raw = coco_config(shared_data, tmp_path)
    raw["eval"]["oks_thresh"] = 0.5
    with pytest.raises(ConfigError, match="oks_thre"):
        validate_config(raw)


def test_codec_and_heatmap_size_follow_the_model(shared_data, tmp_path):
    task = PoseTask(validate_config(coco_config(shared_data, tmp_path, codec={"name": "udp", "sigma": 3})))
    assert tuple(task.codec.heatmap_size) == (16, 24) and task.codec.sigma == 3 and not task.flip_shift
    raw = coco_config(shared_data, tmp_path)
    raw["model"] = {"name": "pose_hrnet_w32", "overrides": {**TINY_MODEL["overrides"], "branch": 1}}
    assert tuple(PoseTask(validate_config(raw)).codec.heatmap_size) == (8, 12)
    with pytest.raises(ConfigError, match="heatmap_size"):
        PoseTask(validate_config(coco_config(shared_data, tmp_path, heatmap_size=[10, 10])))
    with pytest.raises(ConfigError, match="multiples of 32"):
        PoseTask(validate_config(coco_config(shared_data, tmp_path, input_size=[48, 64])))
    raw = coco_config(shared_data, tmp_path)
    raw["model"]["overrides"] = {**TINY_MODEL["overrides"], "num_joints": 16}
    with pytest.raises(ConfigError, match="num_joints"):
        PoseTask(validate_config(raw))


def test_missing_dataset_root_and_detection_file(shared_data, tmp_path):
    task = PoseTask(validate_config(coco_config(shared_data, tmp_path, root=str(tmp_path / "nope"))))
    with pytest.raises(DataError, match="nope"):
        task.build_dataset("train")
    task = PoseTask(validate_config(coco_config(shared_data, tmp_path, detection_file="missing.json")))
    with pytest.raises(DataError, match="missing.json"):
        task.build_dataset("val")


@pytest.mark.slow
def test_train_one_epoch_then_evaluate_on_detected_boxes(shared_data, tmp_path):
    raw = coco_config(shared_data, tmp_path)
    raw["train"].update(eval_every=0)
    cfg = validate_config(raw)
    summary = train(cfg)
    assert summary["epochs"] == 1 and Path(summary["last_checkpoint"]).is_file()
    metrics = evaluate(cfg, summary["last_checkpoint"], tmp_path / "eval")
    assert metrics["gt_boxes"] == 0.0 and 0.0 <= metrics["AP"] <= 1.0
    results = json.loads((tmp_path / "eval/keypoints_val_results.json").read_text())
    assert results and {r["image_id"] for r in results} <= {785, 40083, 196141, 197388}
    assert all(len(r["keypoints"]) == 51 for r in results)
    summary_json = json.loads((tmp_path / "eval/keypoints_val_summary.json").read_text())
    assert summary_json["boxes"] == "detections" and summary_json["warning"] is None


def test_evaluation_on_gt_boxes_says_so(shared_data, tmp_path, caplog):
    cfg = validate_config(coco_config(shared_data, tmp_path, val_boxes="gt"))
    metrics = evaluate(cfg, None, tmp_path / "eval")
    assert metrics["gt_boxes"] == 1.0
    summary = json.loads((tmp_path / "eval/keypoints_val_summary.json").read_text())
    assert summary["boxes"] == "ground truth" and "GROUND-TRUTH" in summary["warning"]
    assert "GROUND-TRUTH PERSON BOXES" in caplog.text


def test_mpii_sample_evaluates(shared_data, tmp_path):
    raw = {
        "task": "pose",
        "model": copy.deepcopy(TINY_MODEL),
        "data": {"format": "mpii", "root": str(shared_data / "mpii"), "val_ann": "annot/test_mpii.json",
                 "input_size": [64, 64], "augment": {"scale_factor": 0.25, "rotation_factor": 30,
                                                     "half_body_prob": 0.0}},
        "eval": {"batch_size": 8, "workers": 0},
        "train": {"workers": 0},
        "output_dir": str(tmp_path / "run"),
        "device": "cpu",
    }
    metrics = evaluate(validate_config(raw), None, tmp_path / "eval")
    assert {"Head", "Mean", "Mean@0.1", "PCKh"} <= set(metrics) and 0 <= metrics["PCKh"] <= 100
    summary = json.loads((tmp_path / "eval/mpii_val_summary.json").read_text())
    assert "fallback" in summary["protocol"]


def test_predict_images_with_boxes_folders_and_no_persons(shared_data, tmp_path):
    cfg = validate_config(coco_config(shared_data, tmp_path))
    val = shared_data / "coco_keypoints/val2017"
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": 785, "bbox": [280, 40, 160, 340], "score": 0.9},
                                 {"image": "000000000785.jpg", "bbox": [10, 10, 50, 100], "score": 0.1}]))
    written = predict(cfg, None, [val / "000000000785.jpg", val / "000000000802.jpg"], tmp_path / "out",
                      boxes=str(boxes), box_thre=0.5)
    records = json.loads((tmp_path / "out/predictions.json").read_text())
    assert [r["image_id"] for r in records] == [785]  # 802 has no boxes: no persons, no crash
    assert records[0]["box"] == [280, 40, 160, 340] and len(records[0]["keypoints"]) == 51
    overlay = cv2.imread(str(tmp_path / "out/000000000785_pose.png"))
    assert overlay is not None and overlay.shape[:2] == cv2.imread(str(val / "000000000785.jpg")).shape[:2]
    assert len(written) == 3
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("000000000139.jpg", "000000000785.jpg"):
        (folder / name).symlink_to(val / name)
    predict(cfg, None, [folder], tmp_path / "out2", overlays=False)
    records = json.loads((tmp_path / "out2/predictions.json").read_text())
    assert sorted(r["image"] for r in records) == ["000000000139.jpg", "000000000785.jpg"]  # whole-image boxes


def test_predict_bad_inputs(shared_data, tmp_path):
    cfg = validate_config(coco_config(shared_data, tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images"):
        predict(cfg, None, [empty], tmp_path / "out")
    with pytest.raises(DataError, match="does not exist"):
        predict(cfg, None, [tmp_path / "missing.jpg"], tmp_path / "out")
    with pytest.raises(ConfigError, match="boxes"):
        predict(cfg, None, [shared_data / "coco_keypoints/val2017/000000000785.jpg"], tmp_path / "out", boxe="x")


def test_predict_video(shared_data, tmp_path):
    frame = cv2.imread(str(shared_data / "coco_keypoints/val2017/000000000785.jpg"))
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (frame.shape[1], frame.shape[0]))
    for _ in range(3):
        writer.write(frame)
    writer.release()
    if not video.is_file() or video.stat().st_size == 0:
        pytest.skip("this OpenCV build cannot write MP4")
    cfg = validate_config(coco_config(shared_data, tmp_path))
    written = predict(cfg, None, [video], tmp_path / "out", max_frames=2)
    assert (tmp_path / "out/clip_pose.mp4") in written
    records = json.loads((tmp_path / "out/predictions.json").read_text())
    assert [r["frame"] for r in records] == [0, 1]
    capture = cv2.VideoCapture(str(tmp_path / "out/clip_pose.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    capture.release()
    assert np.isfinite(records[0]["keypoints"]).all()


CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / "configs" / "pose").rglob("*.yaml")
                 if "task: pose_bottomup" not in p.read_text())  # the bottom-up configs: test_bottomup_task.py


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_pose_config_builds_its_task(path):
    from hrnet.engine.config import load_config

    task = PoseTask(load_config(path))
    assert task.codec.aspect_ratio == task.data.input_size[0] / task.data.input_size[1]
    if task.data.format == "coco":
        assert task.cfg.train.optimizer.weight_decay == 0.0 or "synthetic" in str(path)


def test_paper_configs_state_the_paper_ap():
    text = {p.name: p.read_text() for p in CONFIGS}
    assert "AP 74.4" in text["hrnet_w32_256x192.yaml"] and "AP 73.4" in text["hrnet_w32_256x192_scratch.yaml"]
    assert "AP 75.1" in text["hrnet_w48_256x192.yaml"] and "AP 75.8" in text["hrnet_w32_384x288.yaml"]
    assert "AP 76.3" in text["hrnet_w48_384x288.yaml"] and "90.3" in text["hrnet_w32_256x256.yaml"]


def test_detection_file_without_boxes_gives_an_empty_result(shared_data, tmp_path):
    (tmp_path / "dets.json").write_text("[]")
    cfg = validate_config(coco_config(shared_data, tmp_path, detection_file=str(tmp_path / "dets.json")))
    task = PoseTask(cfg)
    dataset = task.build_dataset("val")
    assert len(dataset) == 0
    metrics = task.evaluate(task.build_model().eval(), DataLoader(dataset, batch_size=4), tmp_path / "eval")
    assert metrics["AP"] == 0.0 and metrics["gt_boxes"] == 0.0
    assert json.loads((tmp_path / "eval/keypoints_val_results.json").read_text()) == []


def test_mpii_with_official_head_boxes(shared_data, tmp_path):
    from scipy.io import savemat

    records = json.loads((shared_data / "mpii/annot/test_mpii.json").read_text())
    joints = np.array([r["joints"] for r in records], dtype=float)  # 1-based, as in gt_valid.mat
    visible = np.array([r["joints_vis"] for r in records], dtype=float)
    heads = np.stack([joints[:, 9] - 10, joints[:, 9] + 10], axis=1)  # (N, 2 corners, 2)
    savemat(tmp_path / "gt_valid.mat", {"pos_gt_src": joints.transpose(1, 2, 0),
                                        "jnt_missing": (1 - visible).T,
                                        "headboxes_src": heads.transpose(1, 2, 0)})
    raw = {
        "task": "pose",
        "model": copy.deepcopy(TINY_MODEL),
        "data": {"format": "mpii", "root": str(shared_data / "mpii"), "val_ann": "annot/test_mpii.json",
                 "mpii_gt_file": str(tmp_path / "gt_valid.mat"), "input_size": [64, 64]},
        "eval": {"batch_size": 8, "workers": 0},
        "train": {"workers": 0},
        "output_dir": str(tmp_path / "run"),
        "device": "cpu",
    }
    metrics = evaluate(validate_config(raw), None, tmp_path / "eval")
    assert 0 <= metrics["Mean"] <= 100
    assert json.loads((tmp_path / "eval/mpii_val_summary.json").read_text())["protocol"].startswith("official")
