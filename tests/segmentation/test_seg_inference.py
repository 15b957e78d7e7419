import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from seg_testutils import PointwiseNet, QuarterNet
from torch import nn

from hrnet.tasks.segmentation.classes import LIP_FLIP_PAIRS
from hrnet.tasks.segmentation.inference import (
    inference,
    multi_scale_inference,
    predict_scores,
    sliding_window_inference,
    swap_channels,
    window_starts,
)
from hrnet.tasks.segmentation.transforms import IMAGENET_MEAN, IMAGENET_STD


def _up(x, size, align_corners):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)


@pytest.mark.parametrize("align_corners", [False, True])
def test_inference_flip_is_exp_of_mean_logits(align_corners):
    model = QuarterNet(5).eval()
    x = torch.randn(2, 3, 32, 40)
    with torch.no_grad():
        a = _up(model(x), (32, 40), align_corners)
        b = _up(model(x.flip(-1)), (32, 40), align_corners).flip(-1)
    torch.testing.assert_close(inference(model, x, align_corners=align_corners), a.exp(), rtol=0, atol=0)
    out = inference(model, x, flip=True, align_corners=align_corners)
    torch.testing.assert_close(out, ((a + b) * 0.5).exp(), rtol=1e-6, atol=0)


def test_inference_lip_flip_exchanges_left_right_channels():
    model = QuarterNet(20).eval()
    x = torch.randn(1, 3, 16, 24)
    with torch.no_grad():
        a = _up(model(x), (16, 24), False)
        b = _up(model(x.flip(-1)), (16, 24), False)
    swapped = b.clone()
    for left, right in LIP_FLIP_PAIRS:
        swapped[:, left], swapped[:, right] = b[:, right], b[:, left]
    expected = ((a + swapped.flip(-1)) * 0.5).exp()
    out = inference(model, x, flip=True, flip_pairs=LIP_FLIP_PAIRS)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=0)
    assert not torch.allclose(out, inference(model, x, flip=True))


def test_swap_channels():
    scores = torch.arange(20.0).view(1, 20, 1, 1)
    out = swap_channels(scores, LIP_FLIP_PAIRS).flatten().tolist()
    assert out[14:20] == [15, 14, 17, 16, 19, 18] and out[:14] == list(range(14))


def test_inference_uses_last_output_of_ocr_models():
    model = QuarterNet(4, outputs=2).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        aux, out = model(x)
    torch.testing.assert_close(inference(model, x), _up(out, (16, 16), False).exp())
    torch.testing.assert_close(inference(model, x, output_index=0), _up(aux, (16, 16), False).exp())


def test_softmax_fusion_averages_probabilities():
    model = QuarterNet(5).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        a = _up(model(x), (16, 16), False).softmax(1)
        b = _up(model(x.flip(-1)), (16, 16), False).softmax(1).flip(-1)
    out = inference(model, x, flip=True, fusion="softmax")
    torch.testing.assert_close(out, (a + b) * 0.5)
    torch.testing.assert_close(out.sum(1), torch.ones(1, 16, 16))


@pytest.mark.parametrize(
    ("length", "crop", "stride", "placement", "expected"),
    [
        # BaseDataset at 1024 rows, crop 512, stride int(512 * 2 / 3) = 341: 3 windows, last cut at the border
        (1024, 512, 341, "pad", [(0, 512), (341, 853), (682, 1024)]),
        # Cityscapes at scale 1.25 (1280 rows), crop 512 = stride: last window shifted back to end at 1280
        (1280, 512, 512, "shift", [(0, 512), (512, 1024), (768, 1280)]),
        (2048, 1024, 1024, "shift", [(0, 1024), (1024, 2048)]),
        (100, 512, 512, "shift", [(0, 100)]),  # smaller than the crop: one window
    ],
)
def test_window_starts(length, crop, stride, placement, expected):
    assert window_starts(length, crop, stride, placement) == expected


@pytest.mark.parametrize("placement", ["pad", "shift"])
@pytest.mark.parametrize("stride", [None, (5, 7)])
def test_sliding_window_equals_whole_image_for_a_pointwise_model(placement, stride):
    model = PointwiseNet(4).eval()
    x = torch.randn(1, 3, 37, 53)
    whole = inference(model, x, flip=True)
    slid = sliding_window_inference(model, x, (16, 24), stride, placement=placement, flip=True)
    assert slid.shape == whole.shape
    torch.testing.assert_close(slid, whole, rtol=1e-5, atol=1e-6)


class WindowMean(nn.Module):
    """Scores = the mean colour of the whole input window: shows exactly what each window contained."""

    def forward(self, x):
        return x.mean((2, 3), keepdim=True).expand_as(x)


def _reference_pad_windows(image: np.ndarray, crop, stride):
    """The official BaseDataset sliding loop, re-derived in numpy for the WindowMean model."""
    pad_value = -np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD)
    h, w = image.shape[:2]
    ph, pw = max(h, crop[0]), max(w, crop[1])
    padded = np.zeros((ph, pw, 3)) + pad_value
    padded[:h, :w] = image
    total = np.zeros((ph, pw, 3))
    count = np.zeros((ph, pw, 1))
    rows = math.ceil((ph - crop[0]) / stride[0]) + 1
    cols = math.ceil((pw - crop[1]) / stride[1]) + 1
    for r in range(rows):
        for c in range(cols):
            h0, w0 = r * stride[0], c * stride[1]
            h1, w1 = min(h0 + crop[0], ph), min(w0 + crop[1], pw)
            window = np.zeros((*crop, 3)) + pad_value
            window[: h1 - h0, : w1 - w0] = padded[h0:h1, w0:w1]
            total[h0:h1, w0:w1] += np.exp(window.mean((0, 1)))
            count[h0:h1, w0:w1] += 1
    return (total / count)[:h, :w]


@pytest.mark.parametrize("shape", [(30, 50), (10, 50), (12, 14)])
def test_pad_placement_pads_windows_with_normalised_black(shape):
    image = np.random.default_rng(0).normal(size=(*shape, 3)).astype(np.float32)
    x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
    out = sliding_window_inference(WindowMean(), x, (16, 20), (10, 13), placement="pad")
    expected = _reference_pad_windows(image.astype(np.float64), (16, 20), (10, 13))
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), expected, rtol=1e-5)


def test_multi_scale_whole_single_scale_is_inference():
    model = QuarterNet(5).eval()
    x = torch.randn(1, 3, 32, 48)
    torch.testing.assert_close(multi_scale_inference(model, x, flip=True), inference(model, x, flip=True))


def test_multi_scale_sums_exp_scores_resized_back():
    model = QuarterNet(5).eval()
    x = torch.randn(1, 3, 32, 48)
    hwc = x[0].permute(1, 2, 0).numpy()
    expected = torch.zeros(1, 5, 32, 48)
    for scale in (0.5, 1.5):
        long_side = int(48 * scale + 0.5)
        size = (int(32 * long_side / 48 + 0.5), long_side)
        resized = cv2.resize(hwc, size[::-1], interpolation=cv2.INTER_LINEAR)
        xs = torch.from_numpy(resized.transpose(2, 0, 1).copy())[None]
        expected += _up(inference(model, xs, flip=True), (32, 48), False)
    out = multi_scale_inference(model, x, scales=(0.5, 1.5), flip=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_multi_scale_base_size_sets_the_long_side_at_scale_one():
    model = PointwiseNet(3).eval()
    x = torch.randn(1, 3, 20, 40)
    out = multi_scale_inference(model, x, base_size=20)
    hwc = cv2.resize(x[0].permute(1, 2, 0).numpy(), (20, 10), interpolation=cv2.INTER_LINEAR)
    small = inference(model, torch.from_numpy(hwc.transpose(2, 0, 1).copy())[None])
    torch.testing.assert_close(out, _up(small, (20, 40), False))


@pytest.mark.parametrize("mode", ["slide", "base", "cityscapes"])
def test_multi_scale_window_modes_match_whole_for_a_pointwise_model(mode):
    model = PointwiseNet(4).eval()
    x = torch.randn(1, 3, 24, 40)
    scales = (0.5, 1.0, 1.75)
    whole = multi_scale_inference(model, x, scales=scales, flip=True, mode="whole")
    out = multi_scale_inference(model, x, scales=scales, flip=True, mode=mode, crop_size=(16, 16))
    torch.testing.assert_close(out, whole, rtol=1e-5, atol=1e-5)


def test_multi_scale_softmax_fusion_is_a_probability_and_batches_match():
    model = QuarterNet(6).eval()
    x = torch.randn(2, 3, 16, 24)
    out = multi_scale_inference(model, x, scales=(0.75, 1.25), flip=True, fusion="softmax")
    torch.testing.assert_close(out.sum(1), torch.ones(2, 16, 24), rtol=1e-5, atol=1e-5)
    single = multi_scale_inference(model, x[1:], scales=(0.75, 1.25), flip=True, fusion="softmax")
    torch.testing.assert_close(out[1:], single)


def test_window_modes_need_a_crop_size():
    with pytest.raises(ValueError, match="crop_size"):
        multi_scale_inference(PointwiseNet(), torch.zeros(1, 3, 8, 8), mode="slide")


def test_predict_scores_cuts_padding_then_resizes_to_the_label():
    model = PointwiseNet(3).eval()
    x = torch.randn(1, 3, 24, 32)
    scores = multi_scale_inference(model, x)
    expected = _up(scores[..., :21, :30], (42, 60), True)
    out = predict_scores(model, x, out_size=(42, 60), pad=(3, 2), align_corners=True)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(predict_scores(model, x), scores)
