"""Geometry of the top-down pipeline, checked against hand-derived values of the official definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hrnet.tasks.pose.transforms import (
    AugmentConfig,
    affine_transform,
    box_to_center_scale,
    crop,
    flip_back,
    fliplr_joints,
    get_affine_transform,
    half_body_transform,
    random_augmentation,
    sanitize_box,
    to_input_tensor,
    transform_preds,
)


class ScriptedRng:
    """Stands in for ``numpy.random.Generator``: returns queued draws and fails if asked for an extra one."""

    def __init__(self, uniform: list[float], normal: list[float]) -> None:
        self.uniform, self.normal = list(uniform), list(normal)

    def random(self) -> float:
        return self.uniform.pop(0)

    def standard_normal(self) -> float:
        return self.normal.pop(0)


def test_box_to_center_scale_tall_and_wide_boxes():
    center, scale = box_to_center_scale([10, 20, 30, 80])  # w < 0.75 h: width grows to 60
    np.testing.assert_allclose(center, [25, 60])
    np.testing.assert_allclose(scale, [60 / 200 * 1.25, 80 / 200 * 1.25], rtol=1e-6)
    center, scale = box_to_center_scale([0, 0, 100, 50])  # w > 0.75 h: height grows to 133.3
    np.testing.assert_allclose(center, [50, 25])
    np.testing.assert_allclose(scale, [100 / 200 * 1.25, 100 / 0.75 / 200 * 1.25], rtol=1e-6)
    assert center.dtype == scale.dtype == np.float32


def test_box_to_center_scale_aspect_padding_and_sentinel():
    _, scale = box_to_center_scale([0, 0, 30, 30], aspect_ratio=1.0, padding=1.0)
    np.testing.assert_allclose(scale, [0.15, 0.15], rtol=1e-6)
    # the official code skips the padding for the "no box" sentinel center x == -1
    center, scale = box_to_center_scale([-31, 0, 60, 80])
    assert center[0] == -1
    np.testing.assert_allclose(scale, [60 / 200, 80 / 200], rtol=1e-6)


def test_sanitize_box_clips_like_the_official_loader():
    assert sanitize_box([10, 20, 30, 40], 640, 480) == [10, 20, 29, 39]
    assert sanitize_box([-5, -5, 20, 20], 640, 480) == [0, 0, 19, 19]
    assert sanitize_box([630, 470, 50, 50], 640, 480) == [630, 470, 9, 9]
    assert sanitize_box([700, 10, 5, 5], 640, 480) is None


def test_affine_transform_without_rotation_is_scale_and_shift():
    center, scale, size = np.array([100.0, 80.0]), np.array([0.6, 0.8]), (48, 64)
    m = get_affine_transform(center, scale, 0, size)
    k = size[0] / (scale[0] * 200)  # only the width sets the zoom
    expected = [[k, 0, size[0] / 2 - k * center[0]], [0, k, size[1] / 2 - k * center[1]]]
    np.testing.assert_allclose(m, expected, atol=1e-5)


@pytest.mark.parametrize("rot", [-90.0, -30.0, 17.5, 45.0])
def test_affine_transform_rotation_and_inverse(rot):
    center, scale, size = np.array([120.0, 90.0]), np.array([0.75, 1.0]), (192, 256)
    m = get_affine_transform(center, scale, rot, size)
    k = size[0] / (scale[0] * 200)
    r = math.radians(rot)
    np.testing.assert_allclose(m[:, :2], k * np.array([[math.cos(r), math.sin(r)], [-math.sin(r), math.cos(r)]]),
                               atol=1e-5)
    np.testing.assert_allclose(affine_transform(center, m), [size[0] / 2, size[1] / 2], atol=1e-4)
    inv = get_affine_transform(center, scale, rot, size, inv=True)
    full = np.vstack([m, [0, 0, 1]]) @ np.vstack([inv, [0, 0, 1]])
    np.testing.assert_allclose(full, np.eye(3), atol=1e-6)


def test_affine_transform_shift_moves_the_source_center():
    center, scale = np.array([50.0, 50.0]), np.array([0.5, 0.5])
    m = get_affine_transform(center, scale, 0, (64, 64), shift=(0.1, -0.2))
    np.testing.assert_allclose(affine_transform([60.0, 30.0], m), [32, 32], atol=1e-4)


def test_affine_transform_points_any_shape():
    m = np.array([[2.0, 0.5, 3.0], [-1.0, 1.5, -2.0]])
    pts = np.random.default_rng(0).uniform(-50, 50, (4, 5, 2))
    expected = np.einsum("ij,abj->abi", m[:, :2], pts) + m[:, 2]
    np.testing.assert_allclose(affine_transform(pts, m), expected, atol=1e-12)


def test_transform_preds_maps_heatmap_corners_back():
    center, scale = np.array([200.0, 150.0]), np.array([0.96, 1.28])
    coords = np.array([[24.0, 32.0], [0.0, 0.0], [48.0, 64.0]])
    out = transform_preds(coords, center, scale, (48, 64))
    half_w = scale[0] * 200 / 2
    half_h = half_w * 64 / 48
    np.testing.assert_allclose(out, [center, center - [half_w, half_h], center + [half_w, half_h]], atol=1e-3)


def test_crop_puts_a_pixel_where_the_matrix_says():
    image = np.zeros((200, 300, 3), np.uint8)
    image[120, 180] = 255
    center, scale = np.array([150.0, 100.0]), np.array([0.75, 1.0])
    out = crop(image, center, scale, (150, 200))  # zoom 1: a plain shift
    u, v = affine_transform([180.0, 120.0], get_affine_transform(center, scale, 0, (150, 200)))
    assert out.shape == (200, 150, 3)
    assert out[int(round(v)), int(round(u))].max() == 255


def test_fliplr_joints_mirrors_swaps_and_zeroes_invisible():
    joints = np.array([[10.0, 5.0, 0], [20.0, 6.0, 0], [30.0, 7.0, 0]])
    vis = np.array([[1.0, 1.0, 0], [1.0, 1.0, 0], [0.0, 0.0, 0]])
    out, out_vis = fliplr_joints(joints, vis, 100, [[1, 2]])
    np.testing.assert_array_equal(out[:, :2], [[89, 5], [0, 0], [79, 6]])
    np.testing.assert_array_equal(out_vis[:, 0], [1, 0, 1])
    assert joints[0, 0] == 10  # inputs untouched
    twice, _ = fliplr_joints(out, out_vis, 100, [[1, 2]])
    np.testing.assert_array_equal(twice[[0, 1], :2], joints[[0, 1], :2])


def test_flip_back_undoes_a_mirrored_input_and_shifts():
    rng = np.random.default_rng(1)
    heatmaps = rng.random((2, 3, 4, 5)).astype(np.float32)
    pairs = [[1, 2]]
    mirrored = heatmaps[:, [0, 2, 1], :, ::-1]  # what a mirror-equivariant network would output
    np.testing.assert_array_equal(flip_back(mirrored, pairs), heatmaps)
    shifted = flip_back(mirrored, pairs, shift=True)
    np.testing.assert_array_equal(shifted[..., 1:], heatmaps[..., :-1])
    np.testing.assert_array_equal(shifted[..., 0], heatmaps[..., 0])
    as_torch = flip_back(torch.from_numpy(np.ascontiguousarray(mirrored)), pairs, shift=True)
    np.testing.assert_array_equal(as_torch.numpy(), shifted)
    with pytest.raises(ValueError, match="N, K, H, W"):
        flip_back(heatmaps[0], pairs)


def _body(n_upper: int, n_lower: int) -> tuple[np.ndarray, np.ndarray]:
    joints = np.zeros((6, 3))
    joints[:3, :2] = [[10, 10], [30, 14], [20, 40]]
    joints[3:, :2] = [[15, 60], [25, 90], [20, 120]]
    vis = np.zeros((6, 3))
    vis[:n_upper, :2] = 1
    vis[3 : 3 + n_lower, :2] = 1
    return joints, vis


def test_half_body_picks_the_upper_body_when_the_draw_is_below_half():
    joints, vis = _body(3, 3)
    center, scale = half_body_transform(joints, vis, [0, 1, 2], 0.75, ScriptedRng([], [0.3]))
    np.testing.assert_allclose(center, [20, 64 / 3], rtol=1e-6)
    # the joints span 20 x 30 pixels; 20 < 0.75 x 30, so the width grows to 22.5
    np.testing.assert_allclose(scale, [22.5 / 200 * 1.5, 30 / 200 * 1.5], rtol=1e-6)
    center, _ = half_body_transform(joints, vis, [0, 1, 2], 0.75, ScriptedRng([], [0.7]))
    np.testing.assert_allclose(center, [20, 90], rtol=1e-6)


def test_half_body_falls_back_and_gives_up():
    joints, vis = _body(3, 2)  # lower body too small: upper even with a draw above 0.5
    center, _ = half_body_transform(joints, vis, [0, 1, 2], 0.75, ScriptedRng([], [2.0]))
    np.testing.assert_allclose(center, [20, 64 / 3], rtol=1e-6)
    joints, vis = _body(1, 0)
    assert half_body_transform(joints, vis, [0, 1, 2], 0.75, ScriptedRng([], [0.0])) == (None, None)


def test_random_augmentation_draws_in_the_official_order():
    image = np.arange(4 * 10 * 3, dtype=np.uint8).reshape(4, 10, 3)
    joints = np.array([[2.0, 1.0], [7.0, 2.0]])
    vis = np.ones(2)
    cfg = AugmentConfig()
    # few visible joints: no half-body draw; scale draw 3.0 clips to 1.35; rotation kept (0.5 <= 0.6) with
    # draw 2.5 -> 112.5 clipped to 90; flip (0.4 <= 0.5)
    rng = ScriptedRng([0.5, 0.4], [3.0, 2.5])
    out = random_augmentation(image, joints, vis, np.array([5.0, 2.0]), np.array([1.0, 2.0]), cfg, rng,
                              [[0, 1]], [0], 0.75)
    img, j, v, c, s, r = out
    np.testing.assert_array_equal(img, image[:, ::-1])
    np.testing.assert_allclose(s, [1.35, 2.7], rtol=1e-6)
    assert r == 90.0
    np.testing.assert_allclose(c, [4.0, 2.0])
    np.testing.assert_allclose(j, [[2.0, 2.0], [7.0, 1.0]])  # mirrored (x' = 9 - x) and swapped
    assert not rng.uniform and not rng.normal
    # no rotation (0.7 > 0.6), no flip: only the scale draw, clipped below at 0.65
    rng = ScriptedRng([0.7, 0.9], [-5.0])
    _, j, _, c, s, r = random_augmentation(image, joints, vis, np.array([5.0, 2.0]), np.array([1.0, 2.0]), cfg,
                                           rng, [[0, 1]], [0], 0.75)
    assert r == 0.0 and not rng.normal
    np.testing.assert_allclose(s, [0.65, 1.3], rtol=1e-6)
    np.testing.assert_array_equal(j, joints)


def test_random_augmentation_half_body_needs_enough_visible_joints():
    joints, vis = _body(3, 3)
    joints = np.concatenate([joints] * 2)  # 12 visible joints > 8
    vis = np.concatenate([vis] * 2)
    cfg = AugmentConfig(rot_prob=0.0, flip=False)
    rng = ScriptedRng([0.1, 0.9], [0.0, 0.0])  # half body (0.1 < 0.3), upper (0.0 < 0.5), scale x1
    _, _, _, c, s, _ = random_augmentation(np.zeros((130, 40, 3), np.uint8), joints, vis, np.zeros(2),
                                           np.ones(2), cfg, rng, [], [0, 1, 2, 6, 7, 8], 0.75)
    np.testing.assert_allclose(c, [20, 64 / 3], rtol=1e-6)
    assert s[1] == pytest.approx(30 / 200 * 1.5)


def test_to_input_tensor_is_imagenet_normalisation():
    rgb = np.array([[[0, 128, 255]]], dtype=np.uint8)
    x = to_input_tensor(rgb)
    expected = (np.array([0, 128, 255]) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    assert x.shape == (3, 1, 1) and x.dtype == torch.float32
    np.testing.assert_allclose(x[:, 0, 0].numpy(), expected, rtol=1e-6)
