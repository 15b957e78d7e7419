"""One pose test-time pipeline: evaluation and prediction give the same poses; the official accuracy()."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import hrnet
from hrnet.engine.config import validate_config
from hrnet.engine.inference import evaluate, predict
from hrnet.engine.metrics_log import read_metrics
from hrnet.engine.trainer import train
from hrnet.tasks.pose import accuracy
from hrnet.tasks.pose.task import PoseTask

TINY = {"width": 8, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1}
IMAGES = (785, 40083)
CATEGORY = 7


def _peaks(points: list[list[tuple[int, int] | None]], h: int, w: int) -> np.ndarray:
    """Heatmaps (N, K, h, w) with a single 1 at each (x, y); None leaves the heatmap empty."""
    maps = np.zeros((len(points), len(points[0]), h, w), dtype=np.float32)
    for n, row in enumerate(points):
        for k, point in enumerate(row):
            if point is not None:
                maps[n, k, point[1], point[0]] = 1.0
    return maps


def test_official_accuracy_on_a_hand_made_case():
    # heatmaps 30 high, 10 wide: upstream divides x by h/10 = 3 and y by w/10 = 1
    target = _peaks([[(4, 5), (5, 6), (1, 8)], [(6, 20), (3, 3), None]], 30, 10)
    output = _peaks([[(5, 5), (5, 7), (2, 8)], [(6, 20), (3, 3), (9, 29)]], 30, 10)
    acc, avg_acc, cnt, pred = accuracy(output, target)
    # joint 0: x off by 1 -> 1/3 < 0.5 right (twice); joint 1: y off by 1 -> 1 wrong, then right;
    # joint 2: the target at x = 1 and the empty target are not counted -> -1, left out of the average
    np.testing.assert_allclose(acc, [0.75, 1.0, 0.5, -1.0])
    assert avg_acc == pytest.approx(0.75) and cnt == 2
    np.testing.assert_array_equal(pred[0], [[5, 5], [5, 7], [2, 8]])
    _, strict, _, _ = accuracy(output, target, thr=0.3)  # 1/3 no longer passes
    assert strict == pytest.approx((0.5 + 0.5) / 2)
    assert accuracy(torch.from_numpy(output), torch.from_numpy(target))[1] == pytest.approx(0.75)
    _, none, zero, _ = accuracy(output, np.zeros_like(target))
    assert none == 0 and zero == 0


def _custom_dataset(shared_data: Path, root: Path) -> Path:
    """Two COCO val images as a keypoint set of category 7, with the person detections of those images
    (the best six of each image, each twice, the copy at a lower score: OKS-NMS and soft OKS-NMS disagree)."""
    coco = shared_data / "coco_keypoints"
    ann = json.loads((coco / "annotations/person_keypoints_val2017.json").read_text())
    ann["images"] = [i for i in ann["images"] if i["id"] in IMAGES]
    ann["annotations"] = [dict(a, category_id=CATEGORY) for a in ann["annotations"] if a["image_id"] in IMAGES]
    ann["categories"] = [dict(c, id=CATEGORY) for c in ann["categories"]]
    (root / "images").mkdir(parents=True)
    for image in ann["images"]:
        (root / "images" / image["file_name"]).symlink_to(coco / "val2017" / image["file_name"])
    (root / "val.json").write_text(json.dumps(ann))
    dets = json.loads((coco / "person_detection_results/COCO_val2017_detections_AP_H_56_person.json").read_text())
    dets = [dict(d, category_id=CATEGORY) for d in dets if d["image_id"] in IMAGES]
    dets = [d for i in IMAGES for d in sorted((d for d in dets if d["image_id"] == i), key=lambda d: -d["score"])[:6]]
    dets += [dict(d, score=d["score"] * 0.5) for d in dets]
    (root / "dets.json").write_text(json.dumps(dets))
    return root


def _config(root: Path, out: Path, soft_nms: bool) -> dict:
    return {
        "task": "pose",
        "model": {"name": "pose_hrnet_w32", "overrides": dict(TINY)},
        "data": {"root": str(root), "input_size": [64, 96], "val_ann": "val.json", "val_images": "images",
                 "train_ann": "val.json", "train_images": "images", "detection_file": "dets.json"},
        "eval": {"batch_size": 16, "workers": 0, "soft_nms": soft_nms},
        "train": {"workers": 0, "batch_size": 16},
        "output_dir": str(out),
        "device": "cpu",
    }


def _poses(records: list[dict]) -> dict[int, list[tuple[float, list[float]]]]:
    by_image: dict[int, list] = {}
    for r in records:
        by_image.setdefault(r["image_id"], []).append((r["score"], r["keypoints"]))
    return {k: sorted(v, key=lambda x: (-x[0], x[1])) for k, v in by_image.items()}


@pytest.fixture(scope="module")
def custom(shared_data, tmp_path_factory):
    root = _custom_dataset(shared_data, tmp_path_factory.mktemp("custom"))
    torch.manual_seed(0)
    weights = hrnet.save_weights(hrnet.build_model("pose_hrnet_w32", **TINY), root / "tiny.safetensors")
    return root, weights


@pytest.mark.parametrize("soft_nms", [False, True])
def test_prediction_and_evaluation_give_the_same_poses(custom, tmp_path, soft_nms):
    root, weights = custom
    cfg = validate_config(_config(root, tmp_path / "run", soft_nms))
    evaluate(cfg, weights, tmp_path / "eval")
    evaluated = json.loads((tmp_path / "eval/keypoints_val_results.json").read_text())
    images = sorted((root / "images").iterdir())
    predict(cfg, weights, images, tmp_path / "pred", boxes=str(root / "dets.json"), overlays=False)
    predicted = json.loads((tmp_path / "pred/predictions.json").read_text())

    assert {r["category_id"] for r in evaluated} == {r["category_id"] for r in predicted} == {CATEGORY}
    a, b = _poses(evaluated), _poses(predicted)
    assert a.keys() == b.keys() == set(IMAGES)
    for image_id in IMAGES:
        assert len(a[image_id]) == len(b[image_id])
        np.testing.assert_allclose([s for s, _ in a[image_id]], [s for s, _ in b[image_id]], rtol=1e-6)
        np.testing.assert_allclose([k for _, k in a[image_id]], [k for _, k in b[image_id]], rtol=1e-6, atol=1e-4)
    # a duplicated box gives the same pose twice: OKS-NMS drops the copy, soft OKS-NMS keeps it (decayed)
    distinct = {tuple(r["keypoints"]) for r in predicted}
    assert (len(distinct) < len(predicted)) == soft_nms


def test_pose_training_logs_the_official_accuracy(custom, tmp_path):
    root, _ = custom
    raw = _config(root, tmp_path / "run", soft_nms=False)
    raw["train"].update(epochs=1, batch_size=1, eval_every=0, max_iters_per_epoch=2, log_every=1)
    train(validate_config(raw))
    records = [r for r in read_metrics(tmp_path / "run/metrics.jsonl") if r["kind"] == "train"]
    assert records and all(0.0 <= r["acc"] <= 1.0 for r in records)

    task = PoseTask(validate_config(raw))
    target = torch.from_numpy(_peaks([[(3, 4)] * 17], 24, 16))
    _, extras = task.compute_loss(lambda images: target.clone(), {"image": None, "target": target,
                                                                  "target_weight": torch.ones(1, 17, 1)})
    assert extras["acc"] == 1.0  # the network's heatmaps are the targets
