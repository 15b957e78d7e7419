"""Pose overlays: keypoint scores only on request, boxes with a contrasting edge and track captions."""

from __future__ import annotations

import numpy as np

from hrnet.tasks.pose import COCO_META
from hrnet.tasks.pose.visualize import draw_poses


def _crowded_head() -> np.ndarray:
    """A person whose five head keypoints sit within a few pixels of each other, plus shoulders."""
    kpts = np.zeros((17, 3))
    kpts[:5, :2] = [[100, 60], [96, 56], [104, 56], [92, 58], [108, 58]]
    kpts[5:7, :2] = [[80, 90], [120, 90]]
    kpts[:7, 2] = 0.87
    return kpts


def _distance_to_skeleton(kpts: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each pixel's distance to the nearest visible keypoint or limb (segment)."""
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    pixels = np.stack([xs, ys], axis=-1).astype(np.float64)
    visible = kpts[:, 2] > 0.2
    segments = [(a, b) for a, b in COCO_META.skeleton if visible[a] and visible[b]]
    segments += [(k, k) for k in np.flatnonzero(visible)]
    best = np.full(shape, np.inf)
    for a, b in segments:
        p, q = kpts[a, :2], kpts[b, :2]
        d = q - p
        t = np.clip(((pixels - p) @ d) / max(d @ d, 1e-9), 0, 1)
        best = np.minimum(best, np.linalg.norm(pixels - (p + t[..., None] * d), axis=-1))
    return best


def test_keypoint_scores_are_drawn_only_on_request():
    image = np.zeros((160, 200, 3), np.uint8)
    kpts = _crowded_head()
    plain = draw_poses(image, [{"keypoints": kpts}], COCO_META, draw_boxes=False)
    scored = draw_poses(image, [{"keypoints": kpts}], COCO_META, draw_boxes=False, show_scores=True)
    near = _distance_to_skeleton(kpts, image.shape[:2]) <= 6  # dot radius and dark edge
    assert plain[near].any() and not plain[~near].any()  # nothing but the skeleton by default
    assert scored[~near].any(axis=-1).sum() > 200  # with show_scores: score labels beside the keypoints


def test_box_caption_names_the_track():
    image = np.full((240, 320, 3), 255, np.uint8)
    inst = {"keypoints": _crowded_head(), "box": [60, 40, 80, 100], "score": 0.93, "track_id": 4}
    drawn = draw_poses(image, [inst], COCO_META)
    untracked = draw_poses(image, [{**inst, "track_id": None}], COCO_META)
    assert (drawn != untracked).any()  # the track's colour and caption
    # the box's left side is a bright line between dark edges on the white image
    row = drawn[110, 50:70].mean(axis=1)
    assert (row < 60).sum() >= 2 and (row > 100).sum() >= 1
