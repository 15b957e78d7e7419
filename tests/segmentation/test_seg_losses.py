import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hrnet.tasks.segmentation.losses import (
    CITYSCAPES_CLASS_WEIGHTS,
    CrossEntropyLoss,
    OhemCrossEntropyLoss,
    SegmentationLoss,
    build_loss,
)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _reference_pixels(logits, target, weight, ignore):
    """Per-pixel weighted CE and true-class probability of the labelled pixels (float64)."""
    prob = _softmax(logits.astype(np.float64))
    labelled = target != ignore
    t = np.where(labelled, target, 0)
    p_true = np.take_along_axis(prob, t[:, None], 1)[:, 0]
    w = np.ones(logits.shape[1]) if weight is None else np.asarray(weight)
    loss = -np.log(p_true) * w[t]
    return loss, p_true, labelled, w[t]


def _reference_ohem(logits, target, thresh, min_kept, weight=None, ignore=255):
    loss, p_true, labelled, _ = _reference_pixels(logits, target, weight, ignore)
    p, loss = p_true[labelled], loss[labelled]
    ordered = np.sort(p, kind="stable")
    threshold = max(ordered[min(min_kept, p.size - 1)], thresh)
    return loss[p < threshold].mean()


def _data(seed=0, n=2, k=5, h=12, w=16):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k, h, w)).astype(np.float32)
    target = rng.integers(0, k, size=(n, h, w))
    target[rng.random(target.shape) < 0.15] = 255
    return logits, target


def test_cityscapes_class_weights_constant():
    assert len(CITYSCAPES_CLASS_WEIGHTS) == 19
    assert CITYSCAPES_CLASS_WEIGHTS[0] == 0.8373 and CITYSCAPES_CLASS_WEIGHTS[-1] == 1.0507


@pytest.mark.parametrize("weight", [None, [0.5, 1.0, 2.0, 1.5, 0.8]])
def test_cross_entropy_is_weighted_mean_over_labelled_pixels(weight):
    logits, target = _data()
    loss, _, labelled, w = _reference_pixels(logits, target, weight, 255)
    expected = (loss * labelled).sum() / (w * labelled).sum()
    out = CrossEntropyLoss(255, weight)(torch.from_numpy(logits), torch.from_numpy(target))
    assert out.item() == pytest.approx(expected, rel=1e-5)


def test_logits_are_upsampled_to_the_label_before_the_loss():
    logits, target = _data(h=48, w=64)
    small = torch.from_numpy(logits[:, :, ::4, ::4].copy())
    for align_corners in (False, True):
        up = F.interpolate(small, size=(48, 64), mode="bilinear", align_corners=align_corners)
        for criterion in (
            CrossEntropyLoss(align_corners=align_corners),
            OhemCrossEntropyLoss(thresh=0.7, min_kept=50, align_corners=align_corners),
        ):
            expected = criterion(up, torch.from_numpy(target))
            torch.testing.assert_close(criterion(small, torch.from_numpy(target)), expected)


@pytest.mark.parametrize(("thresh", "min_kept"), [(0.7, 10), (0.9, 100), (0.3, 300), (0.2, 5), (0.95, 10**6)])
@pytest.mark.parametrize("weight", [None, [0.5, 1.0, 2.0, 1.5, 0.8]])
def test_ohem_matches_the_official_selection(thresh, min_kept, weight):
    logits, target = _data(seed=min_kept)
    expected = _reference_ohem(logits, target, thresh, min_kept, weight)
    out = OhemCrossEntropyLoss(255, thresh, min_kept, weight)(torch.from_numpy(logits), torch.from_numpy(target))
    assert out.item() == pytest.approx(expected, rel=1e-5)


def test_ohem_keeps_at_least_min_kept_hard_pixels():
    # every pixel is confident (p > thresh): the threshold becomes p[min_kept], keeping the 3 hardest
    logits = torch.zeros(1, 2, 4, 4)
    logits[:, 0] = torch.linspace(3, 9, 16).view(4, 4)
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    out = OhemCrossEntropyLoss(thresh=0.5, min_kept=3)(logits, target)
    pixel = F.cross_entropy(logits, target, reduction="none").flatten()
    assert out.item() == pytest.approx(pixel[:3].mean().item(), rel=1e-6)


def test_ohem_without_labelled_pixels_is_zero_and_differentiable():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    out = OhemCrossEntropyLoss()(logits, torch.full((1, 4, 4), 255))
    out.backward()
    assert out.item() == 0.0 and logits.grad is not None


def test_ocr_loss_with_cross_entropy_is_the_balanced_sum():
    logits, target = _data()
    aux, out = torch.from_numpy(logits), torch.from_numpy(logits[:, ::-1].copy())
    t = torch.from_numpy(target)
    loss = build_loss("ce", balance_weights=[0.4, 1.0])([aux, out], t)
    ce = CrossEntropyLoss()
    assert loss.item() == pytest.approx(0.4 * ce(aux, t).item() + ce(out, t).item(), rel=1e-6)


def test_ocr_loss_with_ohem_averages_aux_over_all_pixels():
    logits, target = _data()
    weight = list(CITYSCAPES_CLASS_WEIGHTS[:5])
    aux, out = torch.from_numpy(logits), torch.from_numpy(logits[:, ::-1].copy())
    loss = build_loss("ohem", class_weights=weight, balance_weights=[0.4, 1.0], ohem_thresh=0.7, ohem_min_kept=20)
    pixels, _, labelled, _ = _reference_pixels(logits, target, weight, 255)
    aux_term = (pixels * labelled).mean()  # ignored pixels count as 0 in the mean
    expected = 0.4 * aux_term + _reference_ohem(logits[:, ::-1], target, 0.7, 20, weight)
    assert loss([aux, out], torch.from_numpy(target)).item() == pytest.approx(expected, rel=1e-5)


def test_single_output_and_mismatched_balance_weights():
    logits, target = _data()
    t = torch.from_numpy(target)
    loss = SegmentationLoss(CrossEntropyLoss())
    assert loss(torch.from_numpy(logits), t).item() == pytest.approx(
        CrossEntropyLoss()(torch.from_numpy(logits), t).item()
    )
    with pytest.raises(ValueError, match="2 outputs but 1 balance weights"):
        loss([torch.from_numpy(logits)] * 2, t)


def test_build_loss_cityscapes_weights_and_ohem_defaults():
    loss = build_loss("ohem", class_weights="cityscapes")
    assert isinstance(loss.criterion, OhemCrossEntropyLoss)
    assert loss.criterion.thresh == 0.9 and loss.criterion.min_kept == 131072
    np.testing.assert_allclose(loss.criterion.weight.numpy(), CITYSCAPES_CLASS_WEIGHTS, rtol=1e-6)
