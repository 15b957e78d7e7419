"""The bottom-up pose task: training targets, a training run, evaluation, and ``hrnet predict`` with no boxes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import hrnet
from hrnet.engine.config import validate_config
from hrnet.engine.inference import evaluate, predict
from hrnet.engine.metrics_log import read_metrics
from hrnet.engine.task import get_task_class
from hrnet.engine.trainer import train
from hrnet.errors import ConfigError
from hrnet.tasks.pose.bottomup_data import BottomUpAugment, affine_matrix
from hrnet.tasks.pose.bottomup_task import BottomUpPoseTask

TINY = {"width": 4, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1, "num_basic_blocks": 1}
IMAGES = (785, 40083, 217285)


@pytest.fixture(scope="module")
def sample(shared_data, tmp_path_factory):
    """Three COCO val images (one with a crowd region) as a bottom-up set, and tiny random weights."""
    coco = shared_data / "coco_keypoints"
    root = tmp_path_factory.mktemp("bottomup")
    ann = json.loads((coco / "annotations/person_keypoints_val2017.json").read_text())
    ann["images"] = [i for i in ann["images"] if i["id"] in IMAGES]
    ann["annotations"] = [a for a in ann["annotations"] if a["image_id"] in IMAGES]
    (root / "images").mkdir()
    for image in ann["images"]:
        (root / "images" / image["file_name"]).symlink_to(coco / "val2017" / image["file_name"])
    (root / "val.json").write_text(json.dumps(ann))
    torch.manual_seed(0)
    weights = hrnet.save_weights(hrnet.build_model("pose_higherhrnet_w32", **TINY), root / "tiny.safetensors")
    return root, weights


def _config(root: Path, out: Path) -> dict:
    return {
        "task": "pose_bottomup",
        "model": {"name": "pose_higherhrnet_w32", "overrides": dict(TINY)},
        "data": {"root": str(root), "input_size": 128, "train_ann": "val.json", "train_images": "images",
                 "val_ann": "val.json", "val_images": "images"},
        "train": {"workers": 0, "batch_size": 2, "epochs": 1, "eval_every": 0, "max_iters_per_epoch": 2,
                  "log_every": 1, "optimizer": {"name": "adam", "lr": 1.5e-3}},
        "eval": {"workers": 0, "batch_size": 1, "detection_threshold": 0.0},  # a random model: low peaks
        "output_dir": str(out),
        "device": "cpu",
    }


def test_task_is_registered_under_its_name():
    assert get_task_class("pose_bottomup") is BottomUpPoseTask


def test_training_items_and_a_training_run(sample, tmp_path):
    root, _ = sample
    raw = _config(root, tmp_path / "run")
    task = BottomUpPoseTask(validate_config(raw))
    assert task.output_sizes == [32, 64] and task.with_ae == [True, False]
    item = task.build_dataset("train")[0]
    assert item["image"].shape == (3, 128, 128)
    assert [h.shape for h in item["heatmaps"]] == [(17, 32, 32), (17, 64, 64)]
    assert [m.shape for m in item["masks"]] == [(32, 32), (64, 64)]
    assert [j.shape for j in item["joints"]] == [(30, 17, 2)] * 2
    train(validate_config(raw))
    records = [r for r in read_metrics(tmp_path / "run/metrics.jsonl") if r["kind"] == "train"]
    assert records and all(np.isfinite(r["loss"]) and "push" in r and "pull" in r for r in records)


def test_crowd_region_is_masked(sample):
    root, _ = sample
    raw = _config(root, Path("unused"))
    raw["data"]["augment"] = {"max_rotation": 0, "min_scale": 1, "max_scale": 1, "max_translate": 0, "flip_prob": 0}
    dataset = BottomUpPoseTask(validate_config(raw)).build_dataset("train")
    masks = dataset[dataset.ids.index(217285)]["masks"]
    assert 0 < masks[0].mean() < 1  # the crowd annotation of image 217285 is left out of the heatmap loss
    assert dataset[dataset.ids.index(785)]["masks"][0].min() == 1


def test_affine_matrix_rotates_about_the_output_centre():
    m = affine_matrix((100, 50), 1.0, 200, rotation=90)
    centre = m[:, :2] @ np.array([100, 50]) + m[:, 2]
    np.testing.assert_allclose(centre, [100, 100], atol=1e-9)  # the centre stays in the middle
    right = m[:, :2] @ np.array([150, 50]) + m[:, 2]
    np.testing.assert_allclose(right, [100, 50], atol=1e-9)  # +x becomes -y (rotated image counter-clockwise)
    assert BottomUpAugment().max_rotation == 30


def test_evaluation_and_prediction_agree_without_boxes(sample, tmp_path):
    root, weights = sample
    cfg = validate_config(_config(root, tmp_path / "run"))
    metrics = evaluate(cfg, weights, tmp_path / "eval")
    assert 0.0 <= metrics["AP"] <= 1.0
    evaluated = json.loads((tmp_path / "eval/keypoints_results.json").read_text())
    images = sorted((root / "images").iterdir())
    written = predict(cfg, weights, images, tmp_path / "pred")
    predicted = json.loads((tmp_path / "pred/predictions.json").read_text())
    assert len(predicted) == len(evaluated) > 0
    key = lambda r: (r["image_id"], -r["score"], r["keypoints"])  # noqa: E731
    for a, b in zip(sorted(evaluated, key=key), sorted(predicted, key=key), strict=True):
        assert a["image_id"] == b["image_id"] and a["score"] == pytest.approx(b["score"])
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=1e-4)
        assert len(b["tags"]) == 17
    assert sorted(p.name for p in written if p.suffix == ".png") == sorted(f"{p.stem}_pose.png" for p in images)
    with pytest.raises(ConfigError, match="no person boxes"):
        predict(cfg, weights, images, tmp_path / "pred2", boxes="dets.json")


def test_cli_predict_on_a_photo_with_no_detector(sample, tmp_path):
    root, weights = sample
    config = tmp_path / "bottomup.yaml"
    config.write_text(yaml.safe_dump(_config(root, tmp_path / "run")))
    photo = root / "images" / "000000000785.jpg"
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "hrnet.cli.main", "predict", str(config), "--weights", str(weights),
                           str(photo), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = json.loads((out / "predictions.json").read_text())
    assert records and all(r["image"] == photo.name and len(r["keypoints"]) == 51 for r in records)
    assert (out / "000000000785_pose.png").is_file()


@pytest.mark.parametrize("name", ["coco/higherhrnet_w32_512", "coco/higherhrnet_w32_640", "coco/higherhrnet_w48_640",
                                  "crowdpose/higherhrnet_w32_512", "synthetic/higherhrnet_small"])
def test_shipped_configs_build_their_task(name):
    from importlib.resources import files

    from hrnet.engine.config import load_config

    cfg = load_config(Path(str(files("hrnet") / "configs" / "pose" / f"{name}.yaml")))
    task = BottomUpPoseTask(cfg)
    size = cfg.data.input_size
    assert task.output_sizes == [size // 4, size // 2] and task.meta.num_keypoints == (14 if "crowd" in name else 17)
    assert cfg.train.optimizer.name == "adam" and cfg.train.optimizer.lr == pytest.approx(1.5e-3)


def test_official_configs_state_the_readme_ap():
    from importlib.resources import files

    coco = files("hrnet") / "configs" / "pose" / "coco"
    text = {n: (coco / f"higherhrnet_{n}.yaml").read_text() for n in ("w32_512", "w32_640", "w48_640")}
    assert "AP 67.1" in text["w32_512"] and "AP 69.9" in text["w32_512"]
    assert "AP 68.5" in text["w32_640"] and "AP 70.6" in text["w32_640"]
    assert "AP 69.9" in text["w48_640"] and "AP 72.1" in text["w48_640"]


def test_predict_video_without_boxes(sample, tmp_path):
    import cv2

    root, weights = sample
    frame = cv2.resize(cv2.imread(str(root / "images" / "000000000785.jpg")), (160, 120))
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (160, 120))
    for _ in range(3):
        writer.write(frame)
    writer.release()
    if not video.is_file() or video.stat().st_size == 0:
        pytest.skip("this OpenCV build cannot write MP4")
    cfg = validate_config(_config(root, tmp_path / "run"))
    written = predict(cfg, weights, [video], tmp_path / "out", max_frames=2)
    assert tmp_path / "out/clip_pose.mp4" in written
    records = json.loads((tmp_path / "out/predictions.json").read_text())
    assert records and {r["frame"] for r in records} == {0, 1}
    assert all(len(r["keypoints"]) == 51 and np.isfinite(r["keypoints"]).all() for r in records)
