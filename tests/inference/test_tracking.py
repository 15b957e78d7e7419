"""Tracking and smoothing on synthetic persons who walk and cross, whose identities are known."""

from __future__ import annotations

import numpy as np
import pytest

from hrnet.inference.smoothing import KeypointSmoother, OneEuroFilter
from hrnet.inference.tracking import Tracker, box_from_keypoints
from hrnet.synthetic.video import moving_people


def _noisy_poses(persons, rng, noise=0.03):
    keypoints = np.stack([p.keypoints for p in persons]).astype(np.float64)
    scale = np.sqrt([p.area for p in persons])[:, None, None]
    keypoints[..., :2] += rng.normal(0, noise, size=keypoints[..., :2].shape) * scale
    keypoints[..., 2] = np.where(keypoints[..., 2] > 0, rng.uniform(0.5, 1.0, size=keypoints.shape[:2]), 0.0)
    return keypoints


def test_the_video_has_crossings_and_consistent_truth(crossing_video):
    video = crossing_video
    assert len(video) == 80 and video.frames[0].shape == (128, 192, 3)
    centres = {}
    for t, persons in enumerate(video.truth):
        assert len({p.track_id for p in persons}) == len(persons)
        for p in persons:
            seen = p.keypoints[p.keypoints[:, 2] > 0, :2]
            assert np.all(seen >= p.box[:2] - 1) and np.all(seen <= p.box[:2] + p.box[2:] + 1)
            centres.setdefault(p.track_id, {})[t] = p.box[0] + p.box[2] / 2
    # at least one pair of persons changes left/right order while both are in view: they cross
    crossed = any(np.unique(np.sign([a[t] - b[t] for t in set(a) & set(b)])).size == 2
                  for i, a in centres.items() for j, b in centres.items() if i < j)
    assert crossed
    assert any((p.keypoints[:, 2] == 1).any() for persons in video.truth for p in persons)  # occlusions
    again = moving_people(3, size=(128, 192), num_people=4, seed=1, speed=0.02)
    np.testing.assert_array_equal(again.frames[2], video.frames[2])


@pytest.mark.parametrize("noise", [0.0, 0.03])
def test_pose_tracking_keeps_ids_through_crossings(crossing_video, id_accuracy, noise):
    rng = np.random.default_rng(0)
    tracker = Tracker("pose")
    pairs = []
    for persons in crossing_video.truth:
        ids = tracker.update(np.stack([p.box for p in persons]), _noisy_poses(persons, rng, noise))
        pairs += zip([p.track_id for p in persons], ids.tolist(), strict=True)
    assert len(pairs) > 200
    assert id_accuracy(pairs) >= 0.95


def test_box_tracking_keeps_ids(crossing_video, id_accuracy):
    tracker = Tracker("box")
    pairs = []
    for persons in crossing_video.truth:
        ids = tracker.update(np.stack([p.box for p in persons]))
        pairs += zip([p.track_id for p in persons], ids.tolist(), strict=True)
    assert id_accuracy(pairs) >= 0.95


def test_a_track_survives_a_short_gap_and_new_persons_get_new_ids():
    tracker = Tracker("box", max_age=2)
    box = np.array([[10.0, 10.0, 20.0, 40.0]])
    assert tracker.update(box).tolist() == [0]
    assert tracker.update(np.zeros((0, 4))).tolist() == []
    assert tracker.update(box + [2, 0, 0, 0]).tolist() == [0]  # unseen for one frame: same id
    far = np.array([[100.0, 10.0, 20.0, 40.0]])
    assert tracker.update(np.concatenate([box, far])).tolist() == [0, 1]
    for _ in range(3):
        tracker.update(np.zeros((0, 4)))
    assert tracker.update(box).tolist() == [2]  # gone longer than max_age: a new id


def test_pose_tracking_needs_keypoints():
    with pytest.raises(ValueError, match="keypoints"):
        Tracker("pose").update(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="kind"):
        Tracker("faces")


def test_box_from_keypoints():
    keypoints = np.array([[10, 20, 0.9], [30, 60, 0.8], [500, 500, 0.1], [20, 40, 0.5]])
    np.testing.assert_allclose(box_from_keypoints(keypoints, 0.3, enlarge=1.0), [10, 20, 20, 40])
    np.testing.assert_allclose(box_from_keypoints(keypoints, 0.3, enlarge=1.5), [5, 10, 30, 60])
    assert box_from_keypoints(keypoints, 0.3, min_keypoints=4) is None


def test_one_euro_smooths_jitter_at_rest_and_follows_motion():
    rng = np.random.default_rng(0)
    still = 100 + rng.normal(0, 2.0, size=200)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    smoothed = np.array([f(np.array([x]), 1 / 25)[0] for x in still])
    assert smoothed[50:].std() < 0.55 * still[50:].std()
    ramp = np.arange(100) * 10.0  # 250 px/s
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    followed = np.array([f(np.array([x]), 1 / 25)[0] for x in ramp])
    assert np.abs(followed[20:] - ramp[20:]).max() < 10.0  # lags less than one frame's motion
    slow = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    lagged = np.array([slow(np.array([x]), 1 / 25)[0] for x in ramp])
    assert np.abs(lagged[20:] - ramp[20:]).max() > 30.0  # without the speed term it lags


def test_keypoint_smoother_keeps_tracks_apart_and_scores_as_they_are():
    smoother = KeypointSmoother(fps=25, min_cutoff=0.5, beta=0.0)
    a = np.array([[[0.0, 0.0, 0.9]]])
    b = np.array([[[100.0, 100.0, 0.4]]])
    smoother(np.array([0, 1]), np.concatenate([a, b]), 0)
    out = smoother(np.array([1, 0]), np.concatenate([b + [10, 10, 0], a + [10, 10, 0]]), 1)
    assert 100 < out[0, 0, 0] < 110 and 0 < out[1, 0, 0] < 10  # each pulled towards its own history
    assert out[0, 0, 2] == 0.4 and out[1, 0, 2] == 0.9
