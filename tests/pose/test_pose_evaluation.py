"""COCO keypoint evaluation (the oracle round trip on real annotations) and MPII PCKh."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hrnet.errors import DataError
from hrnet.tasks.pose.codecs import build_codec
from hrnet.tasks.pose.datasets import load_coco, load_coco_instances
from hrnet.tasks.pose.evaluation import (
    COCO_STAT_NAMES,
    coco_keypoint_results,
    evaluate_coco_keypoints,
    head_sizes_from_joints,
    mpii_pckh,
    write_results,
)
from hrnet.tasks.pose.meta import COCO_META
from hrnet.tasks.pose.postprocess import make_instances, rescore_and_nms


def oracle_ap(shared_data: Path, codec_name: str, input_size: tuple[int, int], sigma: float) -> float:
    """GT keypoints -> codec targets -> the full decode path (no flip) -> COCO JSON -> pycocotools AP."""
    root = shared_data / "coco_keypoints"
    stride = 4
    codec = build_codec(codec_name, input_size, (input_size[0] // stride, input_size[1] // stride), sigma)
    # each codec's own box -> center/scale (DarkPose centres boxes on x + (w - 1) / 2)
    coco, insts, report = load_coco_instances(root / "annotations/person_keypoints_val2017.json",
                                              root / "val2017", COCO_META, codec.aspect_ratio, boxes="gt",
                                              box_to_cs=codec.box_to_center_scale)
    assert report.gt_boxes and len(insts) == 67
    targets = [codec.encode(codec.input_keypoints(x.joints, x.joints_vis, x.center, x.scale), x.joints_vis)[0]
               for x in insts]
    centers, scales = np.stack([x.center for x in insts]), np.stack([x.scale for x in insts])
    preds, maxvals = codec.decode(np.stack(targets), centers, scales)
    instances = make_instances(preds, maxvals, centers, scales, [x.score for x in insts], [x.image_id for x in insts])
    results = json.loads(json.dumps(coco_keypoint_results(rescore_and_nms(instances))))  # through JSON
    return evaluate_coco_keypoints(coco, results, verbose=False)["AP"]


@pytest.mark.parametrize("codec_name", ["msra", "dark", "udp"])
@pytest.mark.parametrize(("input_size", "sigma"), [((192, 256), 2.0), ((288, 384), 3.0)])
def test_oracle_round_trip_reaches_near_perfect_ap(shared_data, codec_name, input_size, sigma):
    ap = oracle_ap(shared_data, codec_name, input_size, sigma)
    # The ceiling is ~0.994, not 1: two annotated persons (ids 500742, 2161599) have a labelled keypoint outside
    # their padded GT box, which no top-down codec recovers (OKS ~0.86, below the 0.90/0.95 thresholds).
    assert ap >= 0.99


def test_ground_truth_fed_back_scores_perfectly_and_results_are_written(shared_data, tmp_path):
    ann = shared_data / "coco_keypoints/annotations/person_keypoints_val2017.json"
    coco = load_coco(ann)
    gts = [a for a in coco.dataset["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0} for a in gts]
    path = write_results(tmp_path / "res.json", results)
    metrics = evaluate_coco_keypoints(ann, path, verbose=False)
    assert list(metrics) == list(COCO_STAT_NAMES)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AR"] == pytest.approx(1.0)


def test_evaluation_prints_the_ten_numbers(shared_data, capsys):
    ann = shared_data / "coco_keypoints/annotations/person_keypoints_val2017.json"
    coco = load_coco(ann)
    a = next(a for a in coco.dataset["annotations"] if a["num_keypoints"] > 5)
    evaluate_coco_keypoints(coco, [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
                                    "score": 0.5}])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 10 and all("Average" in line for line in lines)


def test_empty_results_and_unknown_image_ids(shared_data):
    ann = shared_data / "coco_keypoints/annotations/person_keypoints_val2017.json"
    assert evaluate_coco_keypoints(ann, [], verbose=False) == dict.fromkeys(COCO_STAT_NAMES, 0.0)
    bad = [{"image_id": 123456789, "category_id": 1, "keypoints": [0.0] * 51, "score": 1.0}]
    with pytest.raises(DataError, match="123456789"):
        evaluate_coco_keypoints(ann, bad, verbose=False)


def test_coco_keypoint_results_layout():
    inst = {"image_id": 5, "keypoints": np.arange(51, dtype=np.float32).reshape(17, 3), "score": 0.75,
            "center": np.array([1.0, 2.0]), "scale": np.array([0.5, 0.5])}
    (res,) = coco_keypoint_results([inst], category_id=3)
    assert res["image_id"] == 5 and res["category_id"] == 3 and res["score"] == 0.75
    assert res["keypoints"][:4] == [0.0, 1.0, 2.0, 3.0] and len(res["keypoints"]) == 51
    assert res["center"] == [1.0, 2.0] and res["scale"] == [0.5, 0.5]
    json.dumps(res)


def _mpii_case(n: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 500, (n, 16, 2))
    return gt, np.ones((n, 16)), np.full(n, 50.0)


def test_mpii_pckh_perfect_and_one_miss():
    gt, vis, heads = _mpii_case()
    perfect = mpii_pckh(gt, gt, vis, heads)
    assert perfect["Mean"] == pytest.approx(100.0) and perfect["Head"] == pytest.approx(100.0)
    preds = gt.copy()
    preds[0, 9, 0] += 0.5 * 0.6 * 50 + 1e-3  # head top of person 0 just beyond 0.5 x 0.6 x head size
    preds[1, 6, 0] += 1000  # pelvis: excluded from the mean
    preds[2, 0, 1] += 0.5 * 0.6 * 50  # exactly on the threshold counts as correct
    out = mpii_pckh(preds, gt, vis, heads)
    assert out["Head"] == pytest.approx(75.0)
    assert out["Ankle"] == pytest.approx(100.0)
    assert out["Mean"] == pytest.approx(100 * (1 - 1 / (14 * 4)))


def test_mpii_mean_at_0_1_follows_the_official_threshold_table():
    gt, vis, heads = _mpii_case(1)
    preds = gt.copy()
    preds[0, :, 0] += 0.105 * 0.6 * 50  # between 0.10 and 0.11 head-normalised
    out = mpii_pckh(preds, gt, vis, heads)
    assert out["Mean@0.1"] == pytest.approx(100.0)  # the official table is read at index 11 = 0.11
    assert out["PCKh@0.1"] == pytest.approx(0.0)


def test_mpii_invisible_joints_are_ignored_and_head_size_fallback():
    gt, vis, heads = _mpii_case(2)
    vis[0, 3] = 0
    preds = gt.copy()
    preds[0, 3] += 1000
    assert mpii_pckh(preds, gt, vis, heads)["Hip"] == pytest.approx(100.0)
    joints = np.zeros((2, 16, 2))
    joints[:, 8] = [10, 10]
    joints[:, 9] = [10, 40]
    vis = np.ones((2, 16))
    vis[1, 9] = 0
    sizes = head_sizes_from_joints(joints, vis)
    assert sizes[0] == pytest.approx(30 * np.sqrt(2)) and np.isnan(sizes[1])
