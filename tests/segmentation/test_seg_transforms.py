import cv2
import numpy as np
import pytest

from hrnet.tasks.segmentation.classes import LIP_FLIP_PAIRS
from hrnet.tasks.segmentation.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RandomBrightness,
    RandomColorJitter,
    RandomFlip,
    RandomScaleCrop,
    flip_horizontal,
    normalize_image,
    official_random_scale,
    pad_to_size,
    resize_long_side,
    resize_short_side,
)


def test_normalize_image_is_rgb_over_255_minus_mean_over_std():
    bgr = np.array([[[10, 128, 250], [0, 0, 255]]], dtype=np.uint8)
    out = normalize_image(bgr)
    assert out.dtype == np.float32 and out.shape == (1, 2, 3)
    # first pixel: R=250, G=128, B=10
    expected = (np.array([250, 128, 10]) / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out[0, 0], expected, rtol=0, atol=1e-6)
    # the float32 division first, float64 mean/std after (bit-level recipe of the official in-place ops)
    step = (bgr[..., ::-1].astype(np.float32) / 255.0).astype(np.float64)
    exact = (step - np.array(IMAGENET_MEAN)).astype(np.float32).astype(np.float64) / np.array(IMAGENET_STD)
    np.testing.assert_array_equal(out, exact.astype(np.float32))


@pytest.mark.parametrize(
    ("shape", "long_size", "expected"),
    [
        ((1024, 2048), 1024, (512, 1024)),  # Cityscapes at scale 0.5
        ((1024, 2048), 4301, (2151, 4301)),  # int(1024 * 4301 / 2048 + 0.5) = int(2150.999...) -> 2151
        ((377, 130), 473, (473, 163)),  # portrait: height gets the long side; 130*473/377 = 163.1
        ((50, 50), 33, (33, 33)),  # square
        ((101, 203), 100, (50, 100)),  # 101*100/203 = 49.75 -> int(50.25) = 50
    ],
)
def test_resize_long_side_sizes(shape, long_size, expected):
    image = np.zeros((*shape, 3), np.uint8)
    label = np.zeros(shape, np.uint8)
    out, out_label = resize_long_side(image, long_size, label)
    assert out.shape[:2] == expected and out_label.shape == expected


def test_resize_long_side_label_is_nearest():
    label = np.array([[0, 7], [3, 9]], dtype=np.uint8)
    _, out = resize_long_side(np.zeros((2, 2, 3), np.uint8), 5, label)
    assert set(np.unique(out)) <= {0, 3, 7, 9}


def test_resize_short_side_with_fit_stride_pads_mean_colour_and_ignore():
    image = np.full((30, 45, 3), 200, np.uint8)
    label = np.ones((30, 45), np.uint8)
    out, out_label, pad = resize_short_side(image, 20, label, fit_stride=8, ignore_index=255)
    # short side 30 -> 20, long side int(45 * 20 / 30 + 0.5) = 30; padded to 24 x 32
    assert pad == (4, 2)
    assert out.shape == (24, 32, 3) and out_label.shape == (24, 32)
    assert (out_label[20:] == 255).all() and (out_label[:, 30:] == 255).all() and (out_label[:20, :30] == 1).all()
    mean_bgr = np.round(np.array(IMAGENET_MEAN[::-1]) * 255)
    np.testing.assert_array_equal(out[23, 31], mean_bgr)
    # normalising the padding gives zeros (up to the uint8 rounding of the mean colour)
    assert np.abs(normalize_image(out)[23, 31]).max() < 0.01


def test_pad_to_size_pads_bottom_right_only():
    image = np.ones((3, 4, 3), np.float32)
    out = pad_to_size(image, (5, 6), (-1.0, -2.0, -3.0))
    assert out.shape == (5, 6, 3)
    np.testing.assert_array_equal(out[:3, :4], 1)
    np.testing.assert_array_equal(out[4, 5], [-1, -2, -3])
    assert pad_to_size(image, (2, 2), 0.0).shape == (3, 4, 3)  # never crops


def test_official_random_scale_covers_0_5_to_2_1_in_tenths():
    rng = np.random.default_rng(0)
    scales = {round(official_random_scale(rng, 16), 6) for _ in range(2000)}
    assert scales == {round(0.5 + k / 10, 6) for k in range(17)}


def test_random_scale_crop_output_and_ignore_padding():
    rng = np.random.default_rng(1)
    step = RandomScaleCrop(crop_size=(64, 96), base_size=64, scale_factor=16)
    image = np.full((32, 64, 3), 255, np.uint8)
    label = np.zeros((32, 64), np.uint8)
    for _ in range(20):
        out, out_label = step(image, label, rng)
        assert out.shape == (64, 96, 3) and out_label.shape == (64, 96)
        # padded pixels are black with the ignore label; real pixels stay white with label 0
        assert ((out.sum(-1) == 0) == (out_label == 255)).all()


def test_random_scale_crop_scale_range_is_relative_to_image():
    rng = np.random.default_rng(0)
    step = RandomScaleCrop(crop_size=(40, 40), base_size=None, scale_range=(2.0, 2.0))
    image = np.random.default_rng(1).integers(0, 255, (16, 16, 3)).astype(np.uint8)
    out, out_label = step(image, np.zeros((16, 16), np.uint8), rng)
    # the image doubles to 32x32 and is padded to the 40x40 crop (one possible offset: 0, 0)
    np.testing.assert_array_equal(out[:32, :32], cv2.resize(image, (32, 32), interpolation=cv2.INTER_LINEAR))
    assert (out[32:] == 0).all() and (out_label[32:] == 255).all() and (out_label[:32, :32] == 0).all()


def test_flip_horizontal_swaps_lip_pairs():
    label = np.array([[14, 15, 16, 17, 18, 19, 0, 5]], dtype=np.uint8)
    image = np.arange(8 * 3, dtype=np.uint8).reshape(1, 8, 3)
    out_image, out_label = flip_horizontal(image, label, LIP_FLIP_PAIRS)
    np.testing.assert_array_equal(out_image, image[:, ::-1])
    np.testing.assert_array_equal(out_label, [[5, 0, 18, 19, 16, 17, 14, 15]])


def test_random_flip_probability():
    rng = np.random.default_rng(0)
    image = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    flips = sum(RandomFlip(0.5)(image, np.zeros((1, 2), np.uint8), rng)[0][0, 0, 0] == 3 for _ in range(400))
    assert 150 < flips < 250


def test_random_brightness_shifts_all_pixels_equally_and_clips():
    rng = np.random.default_rng(3)
    image = np.array([[[0, 100, 255]]], dtype=np.uint8)
    seen = set()
    for _ in range(100):
        out, _ = RandomBrightness(10)(image, None, rng)
        delta = int(out[0, 0, 1]) - 100
        assert -10 <= delta <= 10
        assert out[0, 0, 0] == max(delta, 0) and out[0, 0, 2] == min(255 + delta, 255)
        seen.add(delta)
    assert 0 in seen and len(seen) > 5


def test_color_jitter_keeps_grey_grey_and_changes_colour():
    rng = np.random.default_rng(0)
    grey = np.full((4, 4, 3), 100, np.uint8)
    out, _ = RandomColorJitter(0.0, 0.0, 0.8)(grey, None, rng)
    np.testing.assert_array_equal(out, grey)  # saturation does not move grey pixels
    out, _ = RandomColorJitter(0.5, 0.0, 0.0)(grey, None, rng)
    assert out.dtype == np.uint8 and len(np.unique(out)) == 1 and 50 <= out[0, 0, 0] <= 150
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[..., 2] = 200
    outs = {RandomColorJitter(0.0, 0.5, 0.5)(colour, None, rng)[0].tobytes() for _ in range(5)}
    assert len(outs) > 1
