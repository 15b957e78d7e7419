"""Rescoring, OKS and (soft) OKS-NMS against hand-computed values of the official definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrnet.tasks.pose.meta import COCO_META
from hrnet.tasks.pose.postprocess import (
    flip_test_merge,
    make_instances,
    oks_iou,
    oks_nms,
    rescore,
    rescore_and_nms,
    soft_oks_nms,
)

SIGMAS = np.array(COCO_META.sigmas)


def _person(offset: float = 0.0, conf: float = 0.9, rng_seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(rng_seed)
    xy = rng.uniform(0, 100, (17, 2)) + offset
    return np.concatenate([xy, np.full((17, 1), conf)], axis=1)


def test_rescore_is_box_score_times_mean_confident_keypoints():
    kpts = np.array([[0, 0, 0.9], [0, 0, 0.1], [0, 0, 0.5], [0, 0, 0.2]])
    assert rescore(kpts, 0.8) == pytest.approx(0.8 * 0.7)
    assert rescore(kpts, 0.8, in_vis_thre=0.6) == pytest.approx(0.8 * 0.9)
    assert rescore(kpts[[1, 3]], 0.8) == 0.0  # none above the threshold
    np.testing.assert_allclose(rescore(np.stack([kpts, kpts]), np.array([1.0, 0.5])), [0.7, 0.35])


def test_oks_iou_identical_and_one_displaced_keypoint():
    g = _person()
    assert oks_iou(g.reshape(-1), g.reshape(1, -1), 500.0, [500.0])[0] == pytest.approx(1.0)
    d = g.copy()
    d[5, 0] += 3.0
    e = 9.0 / (2 * SIGMAS[5]) ** 2 / ((500.0 + 700.0) / 2 + np.spacing(1)) / 2
    expected = (16 + np.exp(-e)) / 17
    assert oks_iou(g.reshape(-1), d.reshape(1, -1), 500.0, [700.0])[0] == pytest.approx(expected, rel=1e-12)


def test_oks_iou_visibility_threshold_uses_the_second_instance_confidences():
    g, d = _person(), _person()
    d[:, 2] = 0.1
    d[0, 2] = 0.9
    d[0, 0] += 5.0  # the only kept keypoint is displaced
    e = 25.0 / (2 * SIGMAS[0]) ** 2 / (400.0 + np.spacing(1)) / 2
    assert oks_iou(g.reshape(-1), d.reshape(1, -1), 400.0, [400.0], in_vis_thre=0.2)[0] == pytest.approx(np.exp(-e))
    d[:, 2] = 0.0
    assert oks_iou(g.reshape(-1), d.reshape(1, -1), 400.0, [400.0], in_vis_thre=0.2)[0] == 0.0


def test_oks_iou_custom_sigmas():
    g = np.array([[0.0, 0.0, 1.0], [10.0, 0.0, 1.0]])
    d = np.array([[[2.0, 0.0, 1.0], [10.0, 0.0, 1.0]]]).reshape(1, -1)
    e = 4.0 / (2 * 0.5) ** 2 / (100 + np.spacing(1)) / 2
    assert oks_iou(g.reshape(-1), d, 100.0, [100.0], sigmas=[0.5, 0.5])[0] == pytest.approx((np.exp(-e) + 1) / 2)


def _db(*people: tuple[np.ndarray, float]) -> list[dict]:
    return [{"keypoints": k, "score": s, "area": 5000.0} for k, s in people]


def test_oks_nms_removes_duplicates_and_keeps_by_score():
    a = _person(rng_seed=1)
    near = a.copy()
    near[:, :2] += 0.5
    far = _person(offset=300.0, rng_seed=2)
    db = _db((near, 0.6), (a, 0.9), (far, 0.3))
    assert oks_nms(db, 0.9) == [1, 2]
    assert oks_nms(db, 1.0) == [1, 0, 2]  # nothing overlaps more than 1
    assert oks_nms([], 0.9) == []


def test_soft_oks_nms_decays_overlapping_scores():
    a = _person(rng_seed=1)
    near = a.copy()
    near[:, :2] += 0.5
    far = _person(offset=300.0, rng_seed=2)
    db = _db((a, 0.9), (near, 0.8), (far, 0.5))
    keep = soft_oks_nms(db, 0.9)
    # the near duplicate's score decays to 0.8 * exp(-oks^2 / 0.9) ~ 0.26 < 0.5: it drops behind `far`
    assert list(keep) == [0, 2, 1]
    assert list(soft_oks_nms(db, 0.9, max_dets=2)) == [0, 2]
    assert len(soft_oks_nms([], 0.9)) == 0


def test_rescore_and_nms_per_image():
    a = _person(rng_seed=1)
    near = a.copy()
    near[:, :2] += 0.5
    instances = [
        {"image_id": 1, "keypoints": a, "score": 1.0, "area": 5000.0, "center": [0, 0], "scale": [1, 1]},
        {"image_id": 1, "keypoints": near * [1, 1, 0.5], "score": 1.0, "area": 5000.0, "center": [0, 0],
         "scale": [1, 1]},
        {"image_id": 2, "keypoints": near, "score": 0.5, "area": 5000.0, "center": [0, 0], "scale": [1, 1]},
    ]
    kept = rescore_and_nms(instances)
    assert [(k["image_id"], round(k["score"], 6)) for k in kept] == [(1, 0.9), (2, 0.45)]
    assert instances[0]["score"] == 1.0  # inputs untouched
    assert rescore_and_nms([]) == []


def test_flip_test_merge_averages_with_the_shifted_mirror():
    out = torch.rand(1, 3, 4, 5)
    mirrored = out[:, [0, 2, 1]].flip(3)
    merged = flip_test_merge(out, mirrored, [[1, 2]], shift=False)
    torch.testing.assert_close(merged, out)
    shifted = flip_test_merge(out, mirrored, [[1, 2]], shift=True)
    torch.testing.assert_close(shifted[..., 1:], (out[..., 1:] + out[..., :-1]) / 2)


def test_make_instances_area_and_keypoints():
    preds = np.ones((2, 17, 2))
    maxvals = np.full((2, 17, 1), 0.5)
    insts = make_instances(preds, maxvals, [[1, 2], [3, 4]], [[0.5, 1.0], [1.0, 1.0]], [0.9, 0.8], [7, 8])
    assert insts[0]["area"] == pytest.approx(100 * 200)
    assert insts[1]["keypoints"].shape == (17, 3) and insts[1]["image_id"] == 8
    assert insts[0]["score"] == pytest.approx(0.9)
