"""Bottom-up (HigherHRNet) training targets and losses, as the official code defines them.

Targets, per image and per output resolution (keypoints already in that output's pixels):

* :func:`heatmap_targets` -- a Gaussian (σ = 2 at every resolution) per visible keypoint, the per-pixel
  maximum where people overlap (official ``HeatmapGenerator``; ``scale_aware=True`` is
  ``ScaleAwareHeatmapGenerator``, one σ per person);
* :func:`tag_indices` -- where each person's keypoints read the tag maps: ``(max_people, K, 2)`` rows of
  (flat index into the ``(K, H, W)`` tag maps, 1), packed per person (official ``JointsGenerator``);
* :func:`ignore_mask` -- 0 over crowd regions and people without keypoints, 1 elsewhere (official
  ``get_mask``), to be warped with the image.

Losses (official ``lib/core/loss.py``): :class:`MaskedHeatmapLoss`, the associative-embedding
:class:`AELoss` (pull: each person's tags to their mean; push: the means of different people apart,
``exp`` or ``max``) and :class:`MultiResolutionAELoss`, which applies them to each output with the
official factors and sums the batch means as the official trainer does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ...errors import ConfigError, DataError
from .codecs import _gaussian_patch, _paste_window

__all__ = ["heatmap_targets", "tag_indices", "ignore_mask", "MaskedHeatmapLoss", "AELoss",
           "MultiResolutionAELoss", "BottomUpLosses"]

PushLoss = Literal["exp", "max"]


def _size(output_size: int | Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` of an output given as a side or ``(height, width)``."""
    return (output_size, output_size) if isinstance(output_size, int) else (int(output_size[0]), int(output_size[1]))


def _inside(x: int, y: int, height: int, width: int) -> bool:
    return 0 <= x < width and 0 <= y < height


def heatmap_targets(joints: np.ndarray, output_size: int | Sequence[int], sigma: float = 2.0,
                    scale_aware: bool = False) -> np.ndarray:
    """``(K, H, W)`` float32 target heatmaps of ``joints``: ``(P, K, 3)`` (x, y, visibility) in output pixels.

    Each visible keypoint inside the map adds ``exp(-d² / 2σ²)`` around its integer pixel (coordinates
    truncated, as the official code), over a ``6σ + 3`` window; overlapping Gaussians keep the maximum.
    ``scale_aware=True`` reads each person's σ from ``joints[p, 0, 3]`` (``(P, K, 4)`` joints).
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[2] < (4 if scale_aware else 3):
        raise DataError(f"joints must be (people, keypoints, {4 if scale_aware else 3}) arrays "
                        f"(x, y, visibility{', sigma' if scale_aware else ''}); got shape {joints.shape}")
    height, width = _size(output_size)
    heatmaps = np.zeros((joints.shape[1], height, width), np.float32)
    for person in joints:
        s = float(person[0, 3]) if scale_aware else float(sigma)
        patch = _gaussian_patch(6 * s + 3, 3 * s + 1, 3 * s + 1, s)
        for k, (x, y, visible) in enumerate(person[:, :3]):
            x, y = int(x), int(y)
            if visible <= 0 or not _inside(x, y, height, width):
                continue
            ul = int(np.round(x - 3 * s - 1)), int(np.round(y - 3 * s - 1))
            br = int(np.round(x + 3 * s + 2)), int(np.round(y + 3 * s + 2))
            _paste_window(heatmaps[k], patch, ul, br, keep_max=True)
    return heatmaps


def tag_indices(joints: np.ndarray, output_size: int | Sequence[int], max_people: int = 30,
                tag_per_joint: bool = True) -> np.ndarray:
    """``(max_people, K, 2)`` int64: for person ``p``, its visible in-map keypoints in order, each as
    ``(flat index into the (K, H, W) tag maps, 1)``; the remaining rows are ``(0, 0)``.

    ``tag_per_joint=False`` indexes a single ``(H, W)`` tag map. People beyond ``max_people`` are dropped.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[2] < 3:
        raise DataError(f"joints must be (people, keypoints, 3) arrays (x, y, visibility); got shape {joints.shape}")
    height, width = _size(output_size)
    out = np.zeros((max_people, joints.shape[1], 2), np.int64)
    for p, person in enumerate(joints[:max_people]):
        n = 0
        for k, (x, y, visible) in enumerate(person[:, :3]):
            x, y = int(x), int(y)
            if visible > 0 and _inside(x, y, height, width):
                out[p, n] = ((k * height * width if tag_per_joint else 0) + y * width + x, 1)
                n += 1
    return out


def ignore_mask(annotations: Sequence[Mapping[str, Any]], height: int, width: int) -> np.ndarray:
    """``(height, width)`` bool, False over crowd regions and over people annotated without keypoints (their
    heatmaps are not supervised there), True elsewhere."""
    from pycocotools import mask as mask_utils

    covered = np.zeros((height, width), np.float64)
    for ann in annotations:
        if not ann.get("iscrowd", 0) and ann.get("num_keypoints", 0) > 0:
            continue
        segmentation = ann.get("segmentation")
        if not segmentation:
            continue
        if isinstance(segmentation, Mapping) and isinstance(segmentation.get("counts"), str):  # compressed RLE
            rles = [{**segmentation, "counts": segmentation["counts"].encode()}]
        else:
            rles = mask_utils.frPyObjects(segmentation, height, width)
            rles = [rles] if isinstance(rles, dict) else rles
        for rle in rles:
            covered += mask_utils.decode(rle)
    return covered < 0.5


class MaskedHeatmapLoss(nn.Module):
    """Per image, the mean over joints and pixels of ``mask * (pred - gt)²``: shape ``(N,)``."""

    def forward(self, pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
        if pred.shape != gt.shape or mask.shape != (pred.shape[0], *pred.shape[2:]):
            raise ValueError(f"heatmaps {tuple(pred.shape)}, targets {tuple(gt.shape)} and masks "
                             f"{tuple(mask.shape)} do not match: expected (N, K, H, W) twice and (N, H, W)")
        return ((pred - gt) ** 2 * mask[:, None]).mean(dim=(1, 2, 3))


class AELoss(nn.Module):
    """Associative-embedding push and pull per image, each of shape ``(N,)``.

    ``tags`` are ``(N, L)`` flattened tag maps, ``joints`` the ``(N, P, K, 2)`` :func:`tag_indices`. For the
    ``n`` people with at least one keypoint: pull = mean over people of the mean squared distance of their
    tags to their mean tag ``h_p``; push = ``sum_{p != q} f(h_p - h_q) / (n (n - 1)) / 2`` with
    ``f(d) = exp(-d²)`` (``exp``) or ``max(0, 1 - |d|)`` (``max``). Push is 0 below two people, pull 0
    without people.
    """

    def __init__(self, push: PushLoss = "exp") -> None:
        super().__init__()
        if push not in ("exp", "max"):
            raise ConfigError(f"AE loss type {push!r}: expected 'exp' or 'max'")
        self.push = push

    def forward(self, tags: Tensor, joints: Tensor) -> tuple[Tensor, Tensor]:
        n, people, k = joints.shape[:3]
        index = joints[..., 0].long().reshape(n, -1)
        visible = (joints[..., 1] > 0).to(tags.dtype)
        values = tags.reshape(n, -1).gather(1, index).reshape(n, people, k)
        count = visible.sum(dim=2)
        present = (count > 0).to(tags.dtype)
        count = count.clamp(min=1)
        means = (values * visible).sum(dim=2) / count
        spread = (((values - means[..., None]) ** 2) * visible).sum(dim=2) / count
        num = present.sum(dim=1)
        pull = (spread * present).sum(dim=1) / num.clamp(min=1)
        diff = means[:, :, None] - means[:, None, :]
        similarity = torch.exp(-(diff**2)) if self.push == "exp" else (1 - diff.abs()).clamp(min=0)
        pairs = present[:, :, None] * present[:, None, :] * (1 - torch.eye(people, dtype=tags.dtype,
                                                                         device=tags.device))
        push = (similarity * pairs).sum(dim=(1, 2)) / (num * (num - 1)).clamp(min=1) * 0.5
        return push, pull


@dataclass(frozen=True)
class BottomUpLosses:
    """The total (a scalar to minimise) and its per-output parts (batch means; None where not trained)."""

    total: Tensor
    heatmaps: list[Tensor | None]
    push: list[Tensor | None]
    pull: list[Tensor | None]


def _per_output(values: Sequence[Any] | Any, n: int, name: str) -> list[Any]:
    values = list(values) if isinstance(values, Sequence) and not isinstance(values, str) else [values] * n
    if len(values) != n:
        raise ConfigError(f"{name}={values} needs one entry per output ({n})")
    return values


class MultiResolutionAELoss(nn.Module):
    """The official ``MultiLossFactory`` and trainer sum: for each output ``i``, the masked heatmap loss of
    its first ``num_joints`` channels (times ``heatmap_factors[i]``) and, where ``with_ae[i]``, push and pull
    on the remaining (tag) channels (times ``push_factors[i]`` / ``pull_factors[i]``). Each term is averaged
    over the batch; :attr:`BottomUpLosses.total` is their sum.

    Defaults are the official COCO configs: two outputs, tags on the first, ``exp`` push, factors 1 / 1e-3.
    """

    def __init__(self, num_joints: int = 17, with_ae: Sequence[bool] = (True, False),
                 with_heatmaps: Sequence[bool] | bool = True, heatmap_factors: Sequence[float] | float = 1.0,
                 push_factors: Sequence[float] | float = 1e-3, pull_factors: Sequence[float] | float = 1e-3,
                 ae_loss_type: PushLoss = "exp") -> None:
        super().__init__()
        n = len(with_ae)
        self.num_joints = num_joints
        self.with_ae = [bool(a) for a in with_ae]
        self.with_heatmaps = [bool(h) for h in _per_output(with_heatmaps, n, "with_heatmaps")]
        self.heatmap_factors = [float(f) for f in _per_output(heatmap_factors, n, "heatmap_factors")]
        self.push_factors = [float(f) for f in _per_output(push_factors, n, "push_factors")]
        self.pull_factors = [float(f) for f in _per_output(pull_factors, n, "pull_factors")]
        if not any(self.with_heatmaps) and not any(self.with_ae):
            raise ConfigError("the bottom-up loss needs a heatmap or an AE term on at least one output")
        self.heatmap_loss = MaskedHeatmapLoss()
        self.ae_loss = AELoss(ae_loss_type)

    def forward(self, outputs: Sequence[Tensor], heatmaps: Sequence[Tensor], masks: Sequence[Tensor],
                joints: Sequence[Tensor]) -> BottomUpLosses:
        """``outputs``: the model's list; per output, ``heatmaps`` ``(N, K, H, W)``, ``masks`` ``(N, H, W)``
        and ``joints`` ``(N, P, K, 2)`` (:func:`tag_indices`)."""
        n = len(self.with_ae)
        if not len(outputs) == len(heatmaps) == len(masks) == len(joints) == n:
            raise ValueError(f"the loss is set up for {n} outputs; got {len(outputs)} outputs, {len(heatmaps)} "
                             f"heatmap targets, {len(masks)} masks and {len(joints)} joint-index arrays")
        hm_terms: list[Tensor | None] = [None] * n
        push_terms: list[Tensor | None] = [None] * n
        pull_terms: list[Tensor | None] = [None] * n
        k = self.num_joints
        for i, out in enumerate(outputs):
            if self.with_heatmaps[i]:
                hm_terms[i] = self.heatmap_loss(out[:, :k], heatmaps[i], masks[i]).mean() * self.heatmap_factors[i]
            if self.with_ae[i]:
                tags = out[:, k:] if self.with_heatmaps[i] else out
                push, pull = self.ae_loss(tags.reshape(out.shape[0], -1), joints[i])
                push_terms[i] = push.mean() * self.push_factors[i]
                pull_terms[i] = pull.mean() * self.pull_factors[i]
        terms = [t for t in (*hm_terms, *push_terms, *pull_terms) if t is not None]
        return BottomUpLosses(torch.stack(terms).sum(), hm_terms, push_terms, pull_terms)
