"""Test-time inference of the official HRNet segmentation code, one function per step.

* :func:`inference` — one forward pass on an input, logits resized bilinearly to the input size, optional
  flip test (LIP: left/right channels exchanged), then the official ``exp()`` of the flip-averaged logits
  (``fusion="exp"``) or the flip-averaged softmax (``fusion="softmax"``).
* :func:`sliding_window_inference` — windows of ``crop_size`` moved by ``stride``, each window scored by
  :func:`inference`, overlaps averaged by count. Two window placements: ``"pad"`` (``BaseDataset``: the
  last windows are cut at the border and padded with the normalised zero pixel) and ``"shift"``
  (``Cityscapes``: the last windows are shifted back to end at the border, never padded).
* :func:`multi_scale_inference` — for each scale, the image's long side is resized to
  ``base_size * scale`` (OpenCV bilinear, on the normalised image), scored whole or with sliding windows
  (``mode``), resized back bilinearly and summed over scales (softmax fusion: averaged).
* :func:`predict_scores` — the official ``testval`` tail: remove the evaluation padding and resize the
  fused scores to the label size.

Only the argmax of the fused scores is used downstream. All functions run under ``torch.no_grad()``;
put the model in ``eval()`` mode first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .transforms import IMAGENET_MEAN, IMAGENET_STD, resize_long_side

__all__ = [
    "Fusion",
    "InferenceMode",
    "select_output",
    "resize_logits",
    "swap_channels",
    "inference",
    "window_starts",
    "sliding_window_inference",
    "multi_scale_inference",
    "predict_scores",
]

Fusion = Literal["exp", "softmax"]
InferenceMode = Literal["whole", "slide", "base", "cityscapes"]


def select_output(output: Tensor | Sequence[Tensor], output_index: int = -1) -> Tensor:
    """The logits to use: OCR models return ``[aux, out]`` and the official ``TEST.OUTPUT_INDEX`` is -1."""
    return output[output_index] if isinstance(output, list | tuple) else output


def resize_logits(logits: Tensor, size: Sequence[int], align_corners: bool = False) -> Tensor:
    """Bilinear resize of ``(N, K, h, w)`` scores to ``size = (H, W)`` (``F.interpolate`` as the official).

    Resizing to the same size is the identity in both ``align_corners`` modes, so it is skipped.
    """
    if tuple(logits.shape[-2:]) == tuple(int(s) for s in size):
        return logits
    return F.interpolate(logits, size=tuple(int(s) for s in size), mode="bilinear", align_corners=align_corners)


def swap_channels(scores: Tensor, pairs: Sequence[tuple[int, int]]) -> Tensor:
    """Exchange channels ``a <-> b`` of ``(N, K, H, W)`` scores (LIP flip: 14<->15, 16<->17, 18<->19)."""
    order = list(range(scores.shape[1]))
    for a, b in pairs:
        order[a], order[b] = b, a
    return scores[:, order]


def _scores(model: nn.Module, image: Tensor, size, align_corners: bool, output_index: int, fusion: Fusion) -> Tensor:
    logits = resize_logits(select_output(model(image), output_index), size, align_corners)
    return logits.softmax(dim=1) if fusion == "softmax" else logits


@torch.no_grad()
def inference(
    model: nn.Module,
    image: Tensor,
    *,
    flip: bool = False,
    align_corners: bool = False,
    output_index: int = -1,
    flip_pairs: Sequence[tuple[int, int]] = (),
    fusion: Fusion = "exp",
) -> Tensor:
    """Score one normalised ``(N, 3, H, W)`` input; returns ``(N, K, H, W)`` scores at the input size.

    ``fusion="exp"`` is the official ``BaseDataset.inference``: the logits are resized to the input size;
    with ``flip`` the mirrored input's logits (channels of ``flip_pairs`` exchanged, as LIP's
    ``inference``) are mirrored back and averaged with them, ``(a + b) * 0.5``; the result is ``exp()``-ed.
    ``fusion="softmax"`` averages softmax probabilities instead.
    """
    size = image.shape[-2:]
    scores = _scores(model, image, size, align_corners, output_index, fusion)
    if flip:
        flipped = _scores(model, image.flip(-1), size, align_corners, output_index, fusion)
        if flip_pairs:
            flipped = swap_channels(flipped, flip_pairs)
        scores = (scores + flipped.flip(-1)) * 0.5
    return scores.exp() if fusion == "exp" else scores


def window_starts(length: int, crop: int, stride: int, placement: Literal["pad", "shift"]) -> list[tuple[int, int]]:
    """``(start, end)`` of the windows along one axis of ``length`` pixels.

    ``ceil((length - crop) / stride) + 1`` windows start every ``stride`` pixels and end at
    ``min(start + crop, length)``; with ``"shift"`` each start is then moved back to ``max(end - crop, 0)``.
    """
    count = max(int(math.ceil((length - crop) / stride)) + 1, 1)
    spans = []
    for i in range(count):
        start = i * stride
        end = min(start + crop, length)
        if placement == "shift":
            start = max(end - crop, 0)
        spans.append((start, end))
    return spans


def _pad_input(image: Tensor, size: Sequence[int], pad_value: Tensor) -> Tensor:
    """Bottom/right pad a ``(1, 3, h, w)`` input to ``size`` with one value per channel."""
    h, w = image.shape[-2:]
    if h >= size[0] and w >= size[1]:
        return image
    out = pad_value.to(image).view(1, -1, 1, 1).expand(1, image.shape[1], max(h, size[0]), max(w, size[1]))
    out = out.clone()
    out[..., :h, :w] = image
    return out


def _padding_value(mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """The normalised value of a black pixel, ``-mean / std`` (the official ``padvalue``)."""
    return torch.from_numpy(-np.asarray(mean, dtype=np.float64) / np.asarray(std, dtype=np.float64)).float()


@torch.no_grad()
def sliding_window_inference(
    model: nn.Module,
    image: Tensor,
    crop_size: Sequence[int],
    stride: Sequence[int] | None = None,
    *,
    placement: Literal["pad", "shift"] = "shift",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    **options,
) -> Tensor:
    """Score a ``(1, 3, H, W)`` input window by window; returns ``(1, K, H, W)`` count-averaged scores.

    ``placement="pad"`` (official ``BaseDataset``, default stride ``int(crop * 2 / 3)``): an input smaller
    than the crop is first padded to it; border windows are cut at the border and padded to the crop size
    with ``-mean / std``. ``placement="shift"`` (official ``Cityscapes``, default stride = crop): border
    windows are moved back inside the image. ``options`` go to :func:`inference`. Only one ``(1, K, H, W)``
    accumulator and one window of scores are held at a time.
    """
    ch, cw = int(crop_size[0]), int(crop_size[1])
    if stride is None:
        stride = (int(ch * 2.0 / 3.0), int(cw * 2.0 / 3.0)) if placement == "pad" else (ch, cw)
    height, width = image.shape[-2:]
    pad_value = _padding_value(mean, std)
    if placement == "pad":
        image = _pad_input(image, (ch, cw), pad_value)
    full_h, full_w = image.shape[-2:]
    total: Tensor | None = None
    count = torch.zeros(1, 1, full_h, full_w, device=image.device)
    for h0, h1 in window_starts(full_h, ch, int(stride[0]), placement):
        for w0, w1 in window_starts(full_w, cw, int(stride[1]), placement):
            window = image[..., h0:h1, w0:w1]
            if placement == "pad":
                window = _pad_input(window, (ch, cw), pad_value)
            scores = inference(model, window, **options)[..., : h1 - h0, : w1 - w0]
            if total is None:
                total = scores.new_zeros(1, scores.shape[1], full_h, full_w)
            total[..., h0:h1, w0:w1] += scores
            count[..., h0:h1, w0:w1] += 1
    total /= count.to(total.device)
    return total[..., :height, :width]


def _resize_input(image: Tensor, long_size: int) -> Tensor:
    """Resize a normalised ``(1, 3, H, W)`` input with OpenCV on HWC float32, as the official code."""
    if long_size == max(image.shape[-2:]):  # OpenCV would return an exact copy
        return image
    hwc = image[0].permute(1, 2, 0).cpu().numpy()
    resized = resize_long_side(hwc, long_size)[0]
    return torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))[None].to(image.device)


@torch.no_grad()
def multi_scale_inference(
    model: nn.Module,
    image: Tensor,
    *,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    mode: InferenceMode = "whole",
    base_size: int | None = None,
    crop_size: Sequence[int] | None = None,
    stride: Sequence[int] | None = None,
    fusion: Fusion = "exp",
    align_corners: bool = False,
    output_index: int = -1,
    flip_pairs: Sequence[tuple[int, int]] = (),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Tensor:
    """Fused scores ``(N, K, H, W)`` of normalised inputs ``(N, 3, H, W)`` (one image at a time).

    For each scale the long side is resized to ``int(base_size * scale + 0.5)`` (``base_size=None``: the
    input's own long side) and scored according to ``mode``:

    * ``"whole"``: the whole resized image in one pass;
    * ``"slide"``: always sliding windows, ``"shift"`` placement;
    * ``"base"``: official ``BaseDataset.multi_scale_inference``: if the long side fits in
      ``min(crop_size)`` the image is padded to the crop and scored whole, otherwise ``"pad"`` windows;
    * ``"cityscapes"``: official ``Cityscapes.multi_scale_inference``: scales <= 1 whole, larger scales
      ``"shift"`` windows with stride = crop.

    The scores are resized back to ``(H, W)`` (bilinear, ``align_corners``) and summed over scales (the
    official ``exp()`` fusion); ``fusion="softmax"`` averages softmax probabilities over flips and scales.
    """
    if mode != "whole" and crop_size is None:
        raise ValueError(f"inference mode {mode!r} needs a crop_size")
    options = dict(flip=flip, align_corners=align_corners, output_index=output_index, flip_pairs=flip_pairs,
                   fusion=fusion)  # fmt: skip
    if image.shape[0] != 1:
        per_image = dict(scales=scales, mode=mode, base_size=base_size, crop_size=crop_size, stride=stride,
                         mean=mean, std=std, **options)  # fmt: skip
        return torch.cat([multi_scale_inference(model, x[None], **per_image) for x in image])
    height, width = image.shape[-2:]
    base = base_size if base_size is not None else max(height, width)
    fused: Tensor | None = None
    for scale in scales:
        scaled = _resize_input(image, int(base * scale + 0.5))
        h, w = scaled.shape[-2:]
        if mode == "whole" or (mode == "cityscapes" and scale <= 1.0):
            scores = inference(model, scaled, **options)
        elif mode == "base" and max(h, w) <= min(crop_size):
            padded = _pad_input(scaled, crop_size, _padding_value(mean, std))
            scores = inference(model, padded, **options)[..., :h, :w]
        else:
            placement = "pad" if mode == "base" else "shift"
            scores = sliding_window_inference(
                model, scaled, crop_size, stride, placement=placement, mean=mean, std=std, **options
            )
        scores = resize_logits(scores, (height, width), align_corners)
        fused = scores if fused is None else fused.add_(scores)
        del scores, scaled
    return fused / len(scales) if fusion == "softmax" else fused


def predict_scores(
    model: nn.Module,
    image: Tensor,
    out_size: Sequence[int] | None = None,
    pad: Sequence[int] = (0, 0),
    **options,
) -> Tensor:
    """:func:`multi_scale_inference`, then the official ``testval`` tail: cut ``pad = (bottom, right)``
    padding added by the evaluation resize and resize the scores bilinearly to ``out_size`` (the label)."""
    scores = multi_scale_inference(model, image, **options)
    pad_h, pad_w = int(pad[0]), int(pad[1])
    if pad_h or pad_w:
        scores = scores[..., : scores.shape[-2] - pad_h, : scores.shape[-1] - pad_w]
    if out_size is not None and tuple(scores.shape[-2:]) != tuple(int(s) for s in out_size):
        scores = resize_logits(scores, out_size, options.get("align_corners", False))
    return scores
