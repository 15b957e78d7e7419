"""Heatmap codecs: targets and decoding from first principles, and encode -> decode round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrnet.errors import ConfigError
from hrnet.tasks.pose.codecs import (
    DARKHeatmap,
    MSRAHeatmap,
    UDPHeatmap,
    build_codec,
    get_max_preds,
    quarter_offset_refine,
)
from hrnet.tasks.pose.transforms import flip_back

CODECS = [MSRAHeatmap, DARKHeatmap, UDPHeatmap]


def _interior_joints(rng: np.random.Generator, k: int = 17, margin: float = 20.0) -> np.ndarray:
    """Input-crop keypoints (192 x 256 input) away from the border."""
    return np.stack([rng.uniform(margin, 192 - margin, k), rng.uniform(margin, 256 - margin, k)], axis=1)


def test_get_max_preds_locations_ties_and_non_positive_maps():
    hm = np.zeros((1, 3, 4, 5), np.float32)
    hm[0, 0, 3, 1] = 2.0
    hm[0, 1, 1, 2] = hm[0, 1, 2, 4] = 1.0  # a tie: the first in row-major order wins
    hm[0, 2] = -1.0
    coords, maxvals = get_max_preds(hm)
    np.testing.assert_array_equal(coords[0], [[1, 3], [2, 1], [0, 0]])
    np.testing.assert_array_equal(maxvals[0, :, 0], [2, 1, -1])
    assert coords.dtype == maxvals.dtype == np.float32
    coords_t, _ = get_max_preds(torch.from_numpy(hm))
    np.testing.assert_array_equal(coords_t, coords)


def test_quarter_offset_moves_toward_the_higher_neighbour_only_inside():
    hm = np.zeros((1, 2, 6, 6), np.float32)
    hm[0, 0, 3, 3], hm[0, 0, 3, 4], hm[0, 0, 2, 3] = 1.0, 0.5, 0.2  # right and up are higher
    hm[0, 1, 1, 3] = 1.0  # py = 1: on the excluded border ring
    hm[0, 1, 1, 4] = 0.5
    coords, _ = get_max_preds(hm)
    refined = quarter_offset_refine(coords, hm)
    np.testing.assert_allclose(refined[0], [[3.25, 2.75], [3, 1]])


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_msra_target_is_an_unnormalised_gaussian_on_the_rounded_pixel(sigma):
    codec = MSRAHeatmap((192, 256), (48, 64), sigma)
    joints = np.array([[81.0, 126.0], [300.0, 10.0], [40.0, 40.0]])
    target, weight = codec.encode(joints, np.array([1.0, 1.0, 0.0]))
    mu = (int(81 / 4 + 0.5), int(126 / 4 + 0.5))  # (20, 32)
    assert np.unravel_index(target[0].argmax(), target[0].shape) == (mu[1], mu[0])
    assert target[0, mu[1], mu[0]] == 1.0
    r = int(3 * sigma)
    np.testing.assert_allclose(target[0, mu[1], mu[0] + 2], np.exp(-4 / (2 * sigma**2)), rtol=1e-6)
    np.testing.assert_allclose(target[0, mu[1] + r, mu[0] - r], np.exp(-2 * r * r / (2 * sigma**2)), rtol=1e-6)
    assert target[0, mu[1], mu[0] + r + 1] == 0  # outside the 3-sigma window
    np.testing.assert_array_equal(weight[:, 0], [1, 0, 0])  # outside the heatmap; not visible
    assert not target[1].any() and not target[2].any()
    assert target.dtype == weight.dtype == np.float32 and weight.shape == (3, 1)


def test_dark_and_udp_targets_peak_at_the_exact_subpixel_location():
    joints = np.array([[81.3, 126.7]])
    dark, _ = DARKHeatmap((192, 256), (48, 64), 2.0).encode(joints, np.ones(1))
    ys, xs = np.mgrid[0:64, 0:48]
    # DarkPose's heatmap matrix: input pixel centres 0..191 -> 0..47, one zoom 47/191 (the width's) for both axes
    dx, dy = (81.3 - 95.5) * 47 / 191 + 23.5, (126.7 - 127.5) * 47 / 191 + 31.5
    np.testing.assert_allclose(dark[0], np.exp(-((xs - dx) ** 2 + (ys - dy) ** 2) / 8), atol=1e-6)
    udp, _ = UDPHeatmap((192, 256), (48, 64), 2.0).encode(joints, np.ones(1))
    mx, my = 81.3 * 47 / 191, 126.7 * 63 / 255  # stride (input - 1) / (heatmap - 1)
    window = (np.abs(xs - round(mx)) <= 6) & (np.abs(ys - round(my)) <= 6)
    expected = np.exp(-((xs - mx) ** 2 + (ys - my) ** 2) / 8) * window
    np.testing.assert_allclose(udp[0], expected, atol=1e-6)


@pytest.mark.parametrize("codec_cls", CODECS)
def test_invisible_and_far_away_joints_get_zero_weight(codec_cls):
    codec = codec_cls((192, 256), (48, 64), 2.0)
    joints = np.array([[50.0, 50.0], [-100.0, 50.0], [50.0, 1000.0], [-20.0, 50.0]])
    target, weight = codec.encode(joints, np.array([0.0, 1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(weight[:, 0], [0, 0, 0, 1])  # the last one's window still overlaps
    assert not target[:3].any() and target[3].any()


def test_msra_round_trip_returns_the_target_pixel_exactly():
    """The MSRA target is symmetric about its integer peak, so the quarter offset adds nothing: decoding
    gives back ``int(x / stride + 0.5)`` exactly (an error of at most half a heatmap pixel)."""
    rng = np.random.default_rng(0)
    codec = MSRAHeatmap((192, 256), (48, 64), 2.0)
    joints = _interior_joints(rng, 200)
    target, _ = codec.encode(joints, np.ones(len(joints)))
    coords, maxvals = codec.decode_heatmap_coords(target[None])
    np.testing.assert_array_equal(coords[0], np.floor(joints / 4.0 + 0.5))
    np.testing.assert_array_equal(maxvals, 1.0)
    # an asymmetric peak (a pixel brighter on one side) moves the decoded point by exactly 0.25
    target[0, int(coords[0, 0, 1]), int(coords[0, 0, 0]) + 1] += 0.1
    shifted, _ = codec.decode_heatmap_coords(target[None])
    np.testing.assert_allclose(shifted[0, 0], coords[0, 0] + [0.25, 0.0])


@pytest.mark.parametrize(("codec_cls", "tol"), [(DARKHeatmap, 0.01), (UDPHeatmap, 0.05)])
def test_dark_and_udp_round_trips_are_subpixel(codec_cls, tol):
    rng = np.random.default_rng(1)
    codec = codec_cls((192, 256), (48, 64), 2.0)
    joints = _interior_joints(rng, 100)
    target, _ = codec.encode(joints, np.ones(len(joints)))
    coords, _ = codec.decode_heatmap_coords(target[None])
    if codec_cls is DARKHeatmap:
        expected = (joints - [95.5, 127.5]) * 47 / 191 + [23.5, 31.5]
    else:
        expected = joints / np.array([191 / 47, 255 / 63])
    assert np.abs(coords[0] - expected).max() < tol


@pytest.mark.parametrize("codec_cls", CODECS)
def test_image_round_trip_through_crop_encode_decode(codec_cls):
    rng = np.random.default_rng(2)
    codec = codec_cls((192, 256), (48, 64), 2.0)
    center, scale = np.array([320.0, 240.0], np.float32), np.array([1.2, 1.6], np.float32)
    joints = center + rng.uniform(-80, 80, (17, 2))
    vis = np.ones(17)
    target, weight = codec.encode(codec.input_keypoints(joints, vis, center, scale), vis)
    assert weight.min() == 1
    preds, maxvals = codec.decode(target[None], center[None], scale[None])
    pixel = scale[0] * 200 / 48  # one heatmap pixel in image pixels
    bound = {MSRAHeatmap: 0.5, DARKHeatmap: 0.01, UDPHeatmap: 0.05}[codec_cls]
    assert np.abs(preds[0] - joints).max() <= bound * pixel + 1e-3
    assert maxvals.shape == (1, 17, 1)


@pytest.mark.parametrize("codec_cls", CODECS)
@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0])
def test_crop_and_keypoint_maps_agree(codec_cls, rot):
    """A bright dot lands in the crop where ``input_keypoints`` says, rotation included."""
    codec = codec_cls((192, 256), (48, 64), 2.0)
    image = np.zeros((400, 500, 3), np.uint8)
    point = np.array([[260.0, 170.0]])
    image[170, 260] = 255
    center, scale = np.array([250.0, 200.0], np.float32), np.array([0.75, 1.0], np.float32)
    crop = codec.warp(image, center, scale, rot)
    assert crop.shape == (256, 192, 3)
    y, x = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    expected = codec.input_keypoints(point, np.ones(1), center, scale, rot)[0]
    assert np.abs(np.array([x, y]) - expected).max() <= 1.0


@pytest.mark.parametrize("codec_cls", [DARKHeatmap, UDPHeatmap])
def test_pixel_centre_codecs_flip_exactly_without_shift(codec_cls):
    rng = np.random.default_rng(3)
    codec = codec_cls((192, 256), (48, 64), 2.0)
    width = 640
    center, scale = np.array([300.0, 200.0]), np.array([1.0, 1.333])
    joints = center + rng.uniform(-60, 60, (17, 2))
    pairs = [[1, 2], [3, 4]]
    index = list(range(17))
    for a, b in pairs:
        index[a], index[b] = b, a
    flipped = np.stack([width - 1 - joints[:, 0], joints[:, 1]], 1)[index]
    flipped_center = np.array([width - 1 - center[0], center[1]])
    t, _ = codec.encode(codec.input_keypoints(joints, np.ones(17), center, scale), np.ones(17))
    tf, _ = codec.encode(codec.input_keypoints(flipped, np.ones(17), flipped_center, scale), np.ones(17))
    np.testing.assert_allclose(flip_back(tf[None], pairs)[0], t, atol=1e-5)


def test_decode_uses_the_heatmap_resolution_it_is_given():
    """Heatmaps of a lower-resolution branch (paper Fig. 9) decode with the same codec."""
    codec = MSRAHeatmap((192, 256), (48, 64), 2.0)
    half = MSRAHeatmap((192, 256), (24, 32), 1.0)
    joints = np.array([[96.0, 128.0], [40.0, 200.0]])
    center, scale = np.array([[100.0, 100.0]]), np.array([[0.96, 1.28]])
    target, _ = half.encode(joints, np.ones(2))
    np.testing.assert_allclose(codec.decode(target[None], center, scale)[0],
                               half.decode(target[None], center, scale)[0])


def test_decode_accepts_torch_and_an_empty_batch():
    codec = DARKHeatmap((192, 256), (48, 64), 2.0)
    target, _ = codec.encode(np.array([[100.0, 100.0]]), np.ones(1))
    center, scale = np.array([[50.0, 50.0]]), np.array([[1.0, 1.0]])
    a, _ = codec.decode(torch.from_numpy(target[None]), center, scale)
    b, _ = codec.decode(target[None], center, scale)
    np.testing.assert_array_equal(a, b)
    preds, maxvals = codec.decode(np.zeros((0, 17, 64, 48), np.float32), np.zeros((0, 2)), np.zeros((0, 2)))
    assert preds.shape == (0, 17, 2) and maxvals.shape == (0, 17, 1)


def test_build_codec_by_name_and_unknown_names():
    codec = build_codec("udp", (192, 256), (48, 64), 3.0, blur_kernel=11)
    assert isinstance(codec, UDPHeatmap) and codec.sigma == 3.0 and codec.blur_kernel == 11
    assert build_codec("msra", (192, 256), (48, 64)).aspect_ratio == 0.75
    with pytest.raises(ConfigError, match="dark"):
        build_codec("drak", (192, 256), (48, 64))
    assert [c.flip_shift for c in (MSRAHeatmap, DARKHeatmap, UDPHeatmap)] == [True, False, False]


def test_dark_geometry_follows_darkpose_pixel_centres():
    """DarkPose: boxes centre on ``x + (w - 1) / 2``; ``scale * 200 - 1`` image pixels span ``size - 1``."""
    codec = DARKHeatmap((192, 256), (48, 64), 2.0)
    center, scale = codec.box_to_center_scale([10.0, 20.0, 30.0, 80.0])
    np.testing.assert_allclose(center, [10 + 29 / 2, 20 + 79 / 2])
    np.testing.assert_allclose(scale, [60 * 1.25 / 200, 80 * 1.25 / 200], rtol=1e-6)
    np.testing.assert_allclose(MSRAHeatmap().box_to_center_scale([10.0, 20.0, 30.0, 80.0])[0], [25, 60])
    center, scale = np.array([300.0, 200.0]), np.array([1.0, 4 / 3])
    span = 200.0 - 1  # image pixels between the first and the last crop pixel centre
    corners = center + np.array([[-span / 2, -span * 255 / 191 / 2], [span / 2, span * 255 / 191 / 2]])
    crop = codec.input_keypoints(corners, np.ones(2), center, scale)
    np.testing.assert_allclose(crop[:, :2], [[0, 0], [191, 255]], atol=1e-3)
    half_h = 47 * 255 / 191 / 2  # the heatmap's y zoom is the width's too, so its rows span 62.87, not 63
    image = codec.heatmap_to_image(np.array([[0.0, 31.5 - half_h], [47.0, 31.5 + half_h]]), center, scale, (48, 64))
    np.testing.assert_allclose(image, corners, atol=1e-3)
