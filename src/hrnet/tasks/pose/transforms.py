"""Geometry of the top-down pipeline: person box -> center/scale -> affine crop, and back.

Every function reproduces one step of the official HRNet pose code (``lib/utils/transforms.py``,
``lib/dataset/JointsDataset.py``, ``lib/dataset/coco.py``) numerically, with the same conventions:

* a person is described by a ``center`` (x, y) in image pixels and a ``scale`` (w, h) in units of
  ``pixel_std = 200`` pixels; the box aspect ratio is fixed to the network input's (w/h = 0.75 at 256x192);
* the crop is an affine warp whose matrix comes from three point pairs (center, a point above the center
  rotated by ``rot`` degrees, and a third point perpendicular to them), as ``cv2.getAffineTransform``;
* sizes are (width, height), arrays of points are ``(..., 2)`` with x first.

Training augmentation (:func:`random_augmentation`) draws its random numbers in the order of the
official ``JointsDataset.__getitem__`` from a ``numpy.random.Generator``, so a run is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ...media import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "PIXEL_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "sanitize_box",
    "box_to_center_scale",
    "get_affine_transform",
    "affine_transform",
    "transform_preds",
    "crop",
    "fliplr_joints",
    "flip_back",
    "half_body_transform",
    "AugmentConfig",
    "random_augmentation",
    "to_input_tensor",
]

PIXEL_STD = 200.0


def sanitize_box(box: Sequence[float], width: int, height: int) -> list[float] | None:
    """Clip a COCO ``[x, y, w, h]`` box to the image, as the official GT loader's "clean_bbox".

    Returns ``[x1, y1, x2 - x1, y2 - y1]`` with ``x2 = min(width - 1, x1 + max(0, w - 1))`` (likewise y),
    or ``None`` when the box is empty: a width or height that is zero, negative or not finite, or a box
    outside the image (the caller also drops annotations with ``area <= 0``, and counts the drops).
    """
    x, y, w, h = (float(v) for v in box[:4])
    if not (math.isfinite(x) and math.isfinite(y) and w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        return None
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if x2 < x1 or y2 < y1:
        return None
    return [x1, y1, x2 - x1, y2 - y1]


def box_to_center_scale(
    box: Sequence[float], aspect_ratio: float = 0.75, padding: float = 1.25, pixel_std: float = PIXEL_STD
) -> tuple[np.ndarray, np.ndarray]:
    """Official ``_xywh2cs``: an ``[x, y, w, h]`` box -> ``(center, scale)``, both float32 of shape (2,).

    ``center = (x + w/2, y + h/2)``; the shorter side is grown until ``w / h == aspect_ratio``
    (input width / height, 192/256 = 0.75); ``scale = (w, h) / pixel_std`` times ``padding`` (1.25).
    As in the official code the padding is skipped when ``center[0] == -1``.
    """
    x, y, w, h = (float(v) for v in box[:4])
    center = np.zeros(2, dtype=np.float32)
    center[0] = x + w * 0.5
    center[1] = y + h * 0.5
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w * 1.0 / pixel_std, h * 1.0 / pixel_std], dtype=np.float32)
    if center[0] != -1:
        scale = scale * padding
    return center, scale


def _rotate(point: Sequence[float], rot_rad: float) -> list[float]:
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return [point[0] * cs - point[1] * sn, point[0] * sn + point[1] * cs]


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def get_affine_transform(
    center: Sequence[float],
    scale: Sequence[float] | float,
    rot: float,
    output_size: Sequence[float],
    shift: Sequence[float] = (0.0, 0.0),
    inv: bool = False,
    pixel_std: float = PIXEL_STD,
) -> np.ndarray:
    """Official ``get_affine_transform``: the 2x3 matrix mapping the person region to ``output_size``.

    The region is ``scale * pixel_std`` pixels around ``center``, rotated by ``rot`` degrees
    (counter-clockwise in image coordinates, i.e. the crop is rotated by ``-rot``); ``shift`` moves the
    source center by ``shift * scale * pixel_std``. Only ``scale[0]`` (the width) sets the zoom, as in the
    official code. ``inv=True`` returns the inverse map (output -> image). ``output_size`` is (w, h).
    Matrices are float64 from ``cv2.getAffineTransform`` on float32 point triples, exactly as upstream.
    """
    if np.ndim(scale) == 0:
        scale = np.array([scale, scale])
    scale_tmp = np.asarray(scale) * pixel_std
    shift = np.asarray(shift, dtype=np.float32)
    src_w = scale_tmp[0]
    dst_w, dst_h = output_size[0], output_size[1]
    rot_rad = np.pi * rot / 180
    src_dir = _rotate([0, src_w * -0.5], rot_rad)
    dst_dir = np.array([0, dst_w * -0.5], np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = center + scale_tmp * shift
    src[1, :] = center + src_dir + scale_tmp * shift
    dst[0, :] = [dst_w * 0.5, dst_h * 0.5]
    dst[1, :] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    src[2:, :] = _third_point(src[0, :], src[1, :])
    dst[2:, :] = _third_point(dst[0, :], dst[1, :])
    if inv:
        return cv2.getAffineTransform(np.float32(dst), np.float32(src))
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def affine_transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Official ``affine_transform`` for any number of points: ``(..., 2)`` -> ``matrix @ [x, y, 1]``."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points[..., :2] @ matrix[:, :2].T + matrix[:, 2]


def transform_preds(
    coords: np.ndarray, center: Sequence[float], scale: Sequence[float], output_size: Sequence[float]
) -> np.ndarray:
    """Official ``transform_preds``: heatmap coordinates ``(K, 2)`` -> image coordinates.

    Applies the inverse of ``get_affine_transform(center, scale, 0, output_size)`` (no rotation),
    where ``output_size`` is the heatmap (w, h). Extra columns (e.g. scores) are returned as zeros, as
    upstream.
    """
    coords = np.asarray(coords)
    out = np.zeros(coords.shape)
    trans = get_affine_transform(center, scale, 0, output_size, inv=True)
    out[..., 0:2] = affine_transform(coords[..., 0:2], trans)
    return out


def crop(
    image: np.ndarray,
    center: Sequence[float],
    scale: Sequence[float],
    output_size: Sequence[int],
    rot: float = 0.0,
) -> np.ndarray:
    """Official ``crop``: the person region warped to ``output_size`` (w, h); bilinear, zero border."""
    trans = get_affine_transform(center, scale, rot, output_size)
    return cv2.warpAffine(image, trans, (int(output_size[0]), int(output_size[1])), flags=cv2.INTER_LINEAR)


def fliplr_joints(
    joints: np.ndarray, joints_vis: np.ndarray, width: int, flip_pairs: Sequence[Sequence[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Official ``fliplr_joints``: mirror joints in an image of ``width`` and swap left/right pairs.

    ``x' = width - x - 1``; rows of each pair in ``flip_pairs`` are exchanged in both arrays. Like the
    official function the returned joints are multiplied by the visibility (invisible joints become 0).
    ``joints`` is ``(K, 2 or 3)``, ``joints_vis`` is ``(K,)`` or ``(K, 2 or 3)``; inputs are not modified.
    """
    joints = np.array(joints, dtype=np.float64)
    joints_vis = np.array(joints_vis, dtype=np.float64)
    joints[:, 0] = width - joints[:, 0] - 1
    index = list(range(len(joints)))
    for a, b in flip_pairs:
        index[a], index[b] = index[b], index[a]
    joints, joints_vis = joints[index], joints_vis[index]
    vis = joints_vis if joints_vis.ndim == joints.ndim else joints_vis[:, None]
    return joints * vis, joints_vis


def flip_back(
    heatmaps: np.ndarray | torch.Tensor, flip_pairs: Sequence[Sequence[int]], shift: bool = False
) -> np.ndarray | torch.Tensor:
    """Official ``flip_back``: heatmaps ``(N, K, H, W)`` of a mirrored input -> heatmaps of the original.

    Mirrors the width axis and swaps the channels of each left/right pair. With ``shift=True`` the result
    is also moved right by one pixel (column ``0`` keeps its value), the official ``SHIFT_HEATMAP`` flip-test
    correction for features that are not aligned after mirroring. Works on numpy arrays and torch tensors.
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"flip_back expects heatmaps shaped (N, K, H, W); got shape {tuple(heatmaps.shape)}")
    index = list(range(heatmaps.shape[1]))
    for a, b in flip_pairs:
        index[a], index[b] = index[b], index[a]
    if isinstance(heatmaps, torch.Tensor):
        out = heatmaps.flip(3)[:, index]
        if shift:
            out[:, :, :, 1:] = out[:, :, :, :-1].clone()
        return out
    out = np.ascontiguousarray(heatmaps[:, :, :, ::-1][:, index])
    if shift:
        out[:, :, :, 1:] = out[:, :, :, :-1].copy()
    return out


def half_body_transform(
    joints: np.ndarray,
    joints_vis: np.ndarray,
    upper_body_ids: Sequence[int],
    aspect_ratio: float,
    rng: np.random.Generator,
    pixel_std: float = PIXEL_STD,
    padding: float = 1.5,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Official ``half_body_transform``: a center/scale around the upper or the lower body's visible joints.

    The upper body is chosen when ``rng.standard_normal() < 0.5`` (sic: a normal draw, so ~69%, as
    upstream) and it has more than 2 visible joints; otherwise the lower body if it has more than 2, else
    the upper. Fewer than 2 selected joints -> ``(None, None)``. The joints' bounding box (no +1) is
    aspect-fixed and its scale multiplied by ``padding`` (1.5); the center is the joints' mean.
    """
    vis = np.asarray(joints_vis)
    vis = vis[:, 0] if vis.ndim == 2 else vis
    upper_set = set(int(i) for i in upper_body_ids)
    upper = [joints[j] for j in range(len(joints)) if vis[j] > 0 and j in upper_set]
    lower = [joints[j] for j in range(len(joints)) if vis[j] > 0 and j not in upper_set]
    choose_upper = rng.standard_normal() < 0.5 and len(upper) > 2
    selected = upper if choose_upper or len(lower) <= 2 else lower
    if len(selected) < 2:
        return None, None
    pts = np.array(selected, dtype=np.float32)
    center = pts.mean(axis=0)[:2]
    left_top, right_bottom = pts.min(axis=0), pts.max(axis=0)
    w = right_bottom[0] - left_top[0]
    h = right_bottom[1] - left_top[1]
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w * 1.0 / pixel_std, h * 1.0 / pixel_std], dtype=np.float32) * padding
    return center, scale


@dataclass(frozen=True)
class AugmentConfig:
    """The official training augmentation settings (COCO values by default; MPII: 0.25 / 30 / no half-body).

    ``rot_prob`` 0.6 with ``rotation_factor`` 45 gives ``r = clip(N(0, 45), -90, 90)``: the official code
    clips at twice the factor, so rotations reach +/-90 degrees, while the paper states [-45, 45].
    """

    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rot_prob: float = 0.6
    flip: bool = True
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8
    half_body_padding: float = 1.5


def random_augmentation(
    image: np.ndarray,
    joints: np.ndarray,
    joints_vis: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    flip_pairs: Sequence[Sequence[int]],
    upper_body_ids: Sequence[int],
    aspect_ratio: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """The official training augmentation of ``JointsDataset.__getitem__``, draws in the same order.

    1. half body: if more than ``half_body_min_joints`` joints are visible and ``rand < half_body_prob``,
       replace center/scale by :func:`half_body_transform`;
    2. scale: ``s *= clip(N(0,1) * sf + 1, 1 - sf, 1 + sf)``;
    3. rotation: with probability ``rot_prob`` (``rand <= 0.6``) ``r = clip(N(0,1) * rf, -2 rf, 2 rf)``;
    4. flip: if ``rand <= 0.5``, mirror the image, the joints (:func:`fliplr_joints`) and
       ``c_x -> W - c_x - 1``.

    Returns ``(image, joints, joints_vis, center, scale, rot)``; the inputs are not modified.
    """
    joints, joints_vis = np.array(joints, dtype=np.float64), np.array(joints_vis, dtype=np.float64)
    center, scale = np.array(center, dtype=np.float32), np.array(scale, dtype=np.float32)
    vis = joints_vis[:, 0] if joints_vis.ndim == 2 else joints_vis
    if vis.sum() > cfg.half_body_min_joints and rng.random() < cfg.half_body_prob:
        c_half, s_half = half_body_transform(
            joints, joints_vis, upper_body_ids, aspect_ratio, rng, padding=cfg.half_body_padding
        )
        if c_half is not None and s_half is not None:
            center, scale = c_half, s_half
    sf, rf = cfg.scale_factor, cfg.rotation_factor
    scale = scale * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
    rot = float(np.clip(rng.standard_normal() * rf, -rf * 2, rf * 2)) if rng.random() <= cfg.rot_prob else 0.0
    if cfg.flip and rng.random() <= cfg.flip_prob:
        image = image[:, ::-1]
        joints, joints_vis = fliplr_joints(joints, joints_vis, image.shape[1], flip_pairs)
        center = center.copy()
        center[0] = image.shape[1] - center[0] - 1
    return image, joints, joints_vis, center, scale, rot


def to_input_tensor(
    crop_rgb: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """``ToTensor`` + ``Normalize`` of the official pipeline: HxWx3 uint8 RGB -> 3xHxW float32.

    Computed as ``pixel * (1 / (255 std)) - mean / std`` straight into the channel-first array (one pass per
    channel instead of five over the image; equal to the two-step form within float rounding, ~5e-7)."""
    crop = np.asarray(crop_rgb)
    scale = (1.0 / (255.0 * np.asarray(std, dtype=np.float64))).astype(np.float32)
    shift = (np.asarray(mean, dtype=np.float64) / np.asarray(std, dtype=np.float64)).astype(np.float32)
    x = np.empty((crop.shape[2], *crop.shape[:2]), dtype=np.float32)
    for channel in range(crop.shape[2]):
        np.multiply(crop[:, :, channel], scale[channel], out=x[channel], casting="unsafe")
        x[channel] -= shift[channel]
    return torch.from_numpy(x)
