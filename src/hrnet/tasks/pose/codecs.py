"""Heatmap codecs: one object encodes training targets and decodes predictions, so the two cannot disagree.

A codec owns the geometry between the image, the network input (``input_size``, (w, h)) and the
heatmaps (``heatmap_size``, (w, h)):

* :meth:`HeatmapCodec.warp` crops a person (``center``, ``scale``, rotation) out of an image;
* :meth:`HeatmapCodec.input_keypoints` maps image keypoints into that crop;
* :meth:`HeatmapCodec.encode` turns crop keypoints into target heatmaps and target weights;
* :meth:`HeatmapCodec.decode` turns predicted heatmaps back into image keypoints and confidences.

Three codecs are provided:

* :class:`MSRAHeatmap` — the official HRNet/SimpleBaseline recipe: Gaussian centred on the *rounded*
  heatmap pixel, argmax + quarter-pixel offset decoding.
* :class:`DARKHeatmap` — DARK (Zhang et al., CVPR 2020, official ``DarkPose`` code): ``size - 1`` crop
  geometry, sub-pixel Gaussian targets; decoding blurs the heatmap, takes its log and refines the argmax
  by one Newton step (Taylor expansion to second order).
* :class:`UDPHeatmap` — UDP (Huang et al., CVPR 2020, official ``UDP-Pose`` code): the image-to-input and
  input-to-heatmap maps use ``size - 1`` (pixel centres, not pixel edges), so flipping is exact and needs no
  heatmap shift; sub-pixel targets and a Newton-step refinement at decoding.

:meth:`HeatmapCodec.decode` infers the heatmap resolution from its input, so heatmaps from a lower
resolution branch (the paper's Fig. 9 ablation) decode with the same codec.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import cv2
import numpy as np
import torch

from ...errors import ConfigError, did_you_mean
from .transforms import PIXEL_STD, affine_transform, box_to_center_scale, get_affine_transform, transform_preds

__all__ = [
    "get_max_preds",
    "quarter_offset_refine",
    "dark_refine",
    "dark_affine_transform",
    "udp_refine",
    "HeatmapCodec",
    "MSRAHeatmap",
    "DARKHeatmap",
    "UDPHeatmap",
    "CODECS",
    "build_codec",
]


Point = Sequence[float]


def _as_numpy(heatmaps: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(heatmaps, torch.Tensor):
        heatmaps = heatmaps.detach().float().cpu().numpy()
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must be shaped (N, K, H, W); got shape {heatmaps.shape}")
    return heatmaps


def get_max_preds(heatmaps: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Official ``get_max_preds``: per-joint argmax location and maximum of ``(N, K, H, W)`` heatmaps.

    Returns ``coords`` float32 ``(N, K, 2)`` (x = index mod W, y = index div W; the first maximum wins) and
    ``maxvals`` float32 ``(N, K, 1)``. Joints whose maximum is ``<= 0`` get coordinates ``(0, 0)``.
    """
    hm = _as_numpy(heatmaps)
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w)
    if n == 0:
        return np.zeros((0, k, 2), np.float32), np.zeros((0, k, 1), np.float32)
    idx = np.argmax(flat, 2).reshape(n, k, 1)
    maxvals = np.amax(flat, 2).reshape(n, k, 1)
    coords = np.tile(idx, (1, 1, 2)).astype(np.float32)
    coords[:, :, 0] = coords[:, :, 0] % w
    coords[:, :, 1] = np.floor(coords[:, :, 1] / w)
    coords *= np.tile(maxvals > 0.0, (1, 1, 2)).astype(np.float32)
    return coords, maxvals


def _gather(hm: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``hm[n, k, ys[n, k], xs[n, k]]`` for every (n, k)."""
    n, k = ys.shape
    return hm[np.arange(n)[:, None], np.arange(k)[None, :], ys, xs]


def quarter_offset_refine(coords: np.ndarray, heatmaps: np.ndarray | torch.Tensor) -> np.ndarray:
    """Official ``POST_PROCESS`` step of ``get_final_preds``: move each argmax a quarter pixel uphill.

    With ``px = floor(x + 0.5)`` (likewise y), when ``1 < px < W - 1`` and ``1 < py < H - 1``:
    ``coords += 0.25 * sign(hm[py, px+1] - hm[py, px-1], hm[py+1, px] - hm[py-1, px])``. Returns a copy.
    """
    hm = _as_numpy(heatmaps)
    _, _, h, w = hm.shape
    coords = np.array(coords, dtype=np.float32)
    px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
    py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
    valid = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    cx, cy = np.clip(px, 1, w - 2), np.clip(py, 1, h - 2)
    diff = np.stack(
        [
            _gather(hm, cy, cx + 1) - _gather(hm, cy, cx - 1),
            _gather(hm, cy + 1, cx) - _gather(hm, cy - 1, cx),
        ],
        axis=-1,
    )
    coords += np.where(valid[..., None], np.sign(diff) * np.float32(0.25), np.float32(0.0))
    return coords


def _blur_keep_max(hm: np.ndarray, kernel: int) -> np.ndarray:
    """DARK's ``gaussian_blur``: zero-pad by ``(kernel-1)/2``, Gaussian-blur, rescale to the original max.

    The blur runs in float64 and the result is stored back as float32, as upstream.
    """
    border = (kernel - 1) // 2
    out = np.empty(hm.shape, dtype=np.float32)
    n, k, h, w = hm.shape
    for i in range(n):
        for j in range(k):
            origin_max = np.max(hm[i, j])
            padded = np.zeros((h + 2 * border, w + 2 * border))
            padded[border : border + h, border : border + w] = hm[i, j]
            out[i, j] = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border : border + h, border : border + w]
            blurred_max = np.max(out[i, j])
            if blurred_max != 0:
                out[i, j] *= origin_max / blurred_max
    return out


def _newton_offset(
    dx: np.ndarray, dy: np.ndarray, dxx: np.ndarray, dxy: np.ndarray, dyy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``-H^-1 D`` for the 2x2 Hessian ``[[dxx, dxy], [dxy, dyy]]``; also returns where ``det(H) != 0``."""
    det = dxx * dyy - dxy**2
    ok = det != 0
    safe = np.where(ok, det, np.ones_like(det))
    off_x = -(dyy * dx - dxy * dy) / safe
    off_y = -(-dxy * dx + dxx * dy) / safe
    return off_x, off_y, ok


def dark_refine(coords: np.ndarray, heatmaps: np.ndarray | torch.Tensor, blur_kernel: int = 11) -> np.ndarray:
    """DARK decoding (``DarkPose`` ``get_final_preds``): refine integer argmax ``coords`` to sub-pixel.

    Heatmaps are blurred (:func:`_blur_keep_max`, kernel ``blur_kernel``), clamped at ``1e-10`` and log'ed;
    then, where ``1 < px < W - 2`` and ``1 < py < H - 2`` (``px = int(x)``), one Newton step
    ``coords -= H^-1 D`` with central differences ``dx = (h[x+1] - h[x-1]) / 2``,
    ``dxx = (h[x+2] - 2 h[x] + h[x-2]) / 4``,
    ``dxy = (h[y+1,x+1] - h[y-1,x+1] - h[y+1,x-1] + h[y-1,x-1]) / 4``,
    skipped when the Hessian is singular. Computed in float32 like upstream; returns ``(N, K, 2)`` float32.
    """
    hm = np.log(np.maximum(_blur_keep_max(_as_numpy(heatmaps), blur_kernel), np.float32(1e-10)))
    _, _, h, w = hm.shape
    coords = np.array(coords, dtype=np.float32)
    px, py = coords[..., 0].astype(np.int64), coords[..., 1].astype(np.int64)
    valid = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    x, y = np.clip(px, 2, w - 3), np.clip(py, 2, h - 3)

    def at(dy_: int, dx_: int) -> np.ndarray:
        return _gather(hm, y + dy_, x + dx_)

    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    dyy = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    off_x, off_y, ok = _newton_offset(dx, dy, dxx, dxy, dyy)
    apply = valid & ok
    coords[..., 0] += np.where(apply, off_x, np.float32(0)).astype(np.float32)
    coords[..., 1] += np.where(apply, off_y, np.float32(0)).astype(np.float32)
    return coords


def udp_refine(coords: np.ndarray, heatmaps: np.ndarray | torch.Tensor, blur_kernel: int = 7) -> np.ndarray:
    """UDP decoding (``UDP-Pose`` ``post``): refine integer argmax ``coords`` to sub-pixel.

    Each heatmap is Gaussian-blurred (``blur_kernel``, OpenCV's default reflected border), min-max rescaled
    to ``[0, original max]``, clipped to ``[0.001, 50]`` and log'ed, then padded by one replicated pixel.
    One Newton step ``coords -= H^-1 D`` with one-pixel central differences
    (``dx = (h[x+1] - h[x-1]) / 2``, ``dxx = h[x+1] - 2 h[x] + h[x-1]``,
    ``dxy = (h[y+1,x+1] - h[y,x+1] - h[y+1,x] + 2 h[y,x] - h[y,x-1] - h[y-1,x] + h[y-1,x-1]) / 2``) is applied
    at ``(int(x), int(y))``; a singular Hessian gives no offset. Returns float64 ``(N, K, 2)``.
    """
    hm = _as_numpy(heatmaps).astype(np.float32, copy=True)
    n, k, h, w = hm.shape
    for i in range(n):
        for j in range(k):
            origin_max = np.max(hm[i, j])
            blurred = cv2.GaussianBlur(hm[i, j], (blur_kernel, blur_kernel), 0)
            lo, hi = np.min(blurred), np.max(blurred)
            hm[i, j] = (blurred - lo) / (hi - lo) * origin_max if hi > lo else blurred
    hm = np.log(np.clip(hm, 0.001, 50))
    padded = np.pad(hm.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    ix = coords[..., 0].astype(np.int32).astype(np.int64) + 1
    iy = coords[..., 1].astype(np.int32).astype(np.int64) + 1

    def at(dy_: int, dx_: int) -> np.ndarray:
        return _gather(padded, iy + dy_, ix + dx_)

    centre = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = at(0, 1) - 2 * centre + at(0, -1)
    dyy = at(1, 0) - 2 * centre + at(-1, 0)
    dxy = 0.5 * (at(1, 1) - at(0, 1) - at(1, 0) + 2 * centre - at(0, -1) - at(-1, 0) + at(-1, -1))
    off_x, off_y, ok = _newton_offset(dx, dy, dxx, dxy, dyy)
    out = coords.astype(np.int32).astype(np.float64)
    out[..., 0] += np.where(ok, off_x, 0.0)
    out[..., 1] += np.where(ok, off_y, 0.0)
    return out


def _gaussian_patch(size: float, x0: float, y0: float, sigma: float) -> np.ndarray:
    x = np.arange(0, size, 1, np.float32)
    y = x[:, np.newaxis]
    return np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))


def _visibility(joints_vis: np.ndarray) -> np.ndarray:
    vis = np.asarray(joints_vis, dtype=np.float32)
    return vis[:, 0] if vis.ndim == 2 else vis


def _paste_window(heatmap: np.ndarray, patch: np.ndarray, ul: Sequence[int], br: Sequence[int],
                  keep_max: bool = False) -> None:
    """Write the part of ``patch`` (covering ``ul``..``br``, exclusive, in heatmap pixels) that lies inside
    ``heatmap``, in place: the official target generation's clipped paste (``keep_max``: the element-wise
    maximum with what is there, as the bottom-up targets of overlapping people)."""
    hh, hw = heatmap.shape
    gx = max(0, -ul[0]), min(br[0], hw) - ul[0]
    gy = max(0, -ul[1]), min(br[1], hh) - ul[1]
    ix = max(0, ul[0]), min(br[0], hw)
    iy = max(0, ul[1]), min(br[1], hh)
    window = patch[gy[0] : gy[1], gx[0] : gx[1]]
    if keep_max:
        window = np.maximum(heatmap[iy[0] : iy[1], ix[0] : ix[1]], window)
    heatmap[iy[0] : iy[1], ix[0] : ix[1]] = window


class HeatmapCodec(ABC):
    """Base class. ``input_size`` and ``heatmap_size`` are (w, h); ``sigma`` is in heatmap pixels.

    ``flip_shift`` is whether this codec's flip test shifts the mirrored heatmap by one pixel
    (:func:`~hrnet.tasks.pose.transforms.flip_back` with ``shift=True``).
    """

    name: ClassVar[str]
    flip_shift: ClassVar[bool]

    def __init__(self, input_size: Sequence[int] = (192, 256), heatmap_size: Sequence[int] = (48, 64),
                 sigma: float = 2.0) -> None:
        self.input_size = np.array(input_size)
        self.heatmap_size = np.array(heatmap_size)
        self.sigma = sigma
        if len(self.input_size) != 2 or len(self.heatmap_size) != 2:
            raise ConfigError(
                f"input_size and heatmap_size are (width, height) pairs; got {input_size}, {heatmap_size}"
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(input_size={tuple(self.input_size.tolist())}, "
            f"heatmap_size={tuple(self.heatmap_size.tolist())}, sigma={self.sigma})"
        )

    @property
    def aspect_ratio(self) -> float:
        """Input width / height: the aspect every person box is grown to."""
        return float(self.input_size[0]) / float(self.input_size[1])

    def box_to_center_scale(self, box: Sequence[float], padding: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
        """A person box ``[x, y, w, h]`` -> ``(center, scale)`` for this codec's crop (official ``_xywh2cs``)."""
        return box_to_center_scale(box, self.aspect_ratio, padding)

    def crop_matrix(self, center: Sequence[float], scale: Sequence[float], rot: float = 0.0) -> np.ndarray:
        """The 2x3 image -> input matrix (official ``get_affine_transform`` to ``input_size``)."""
        return get_affine_transform(center, scale, rot, self.input_size)

    def warp(self, image: np.ndarray, center: Sequence[float], scale: Sequence[float], rot: float = 0.0) -> np.ndarray:
        """Crop the person region into an ``input_size`` image (``cv2.warpAffine``, INTER_LINEAR)."""
        m = self.crop_matrix(center, scale, rot)
        return cv2.warpAffine(image, m, (int(self.input_size[0]), int(self.input_size[1])), flags=cv2.INTER_LINEAR)

    def input_keypoints(self, joints: np.ndarray, joints_vis: np.ndarray, center: Point, scale: Point,
                        rot: float = 0.0) -> np.ndarray:
        """Image keypoints ``(K, >=2)`` -> input-crop keypoints; joints with visibility 0 are left as is."""
        out = np.array(joints, dtype=np.float64)
        vis = _visibility(joints_vis) > 0
        out[vis, 0:2] = affine_transform(out[vis, 0:2], self.crop_matrix(center, scale, rot))
        return out

    def encode(self, joints: np.ndarray, joints_vis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input-crop keypoints ``(K, >=2)`` + visibility -> ``(target (K, h, w), weight (K, 1))``, float32.

        The weight is the visibility (0/1), set to 0 when the ``3 sigma`` window around the codec's
        :meth:`window_centers` lies entirely outside the heatmap; a visible joint's Gaussian is drawn by
        :meth:`draw_target` (the official loop, shared by the codecs).
        """
        k = len(joints)
        hw, hh = int(self.heatmap_size[0]), int(self.heatmap_size[1])
        weight = _visibility(joints_vis).reshape(k, 1).astype(np.float32)
        target = np.zeros((k, hh, hw), dtype=np.float32)
        tmp_size = self.sigma * 3
        for j, (mu_x, mu_y) in enumerate(self.window_centers(joints)):
            ul = [int(mu_x - tmp_size), int(mu_y - tmp_size)]
            br = [int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1)]
            if ul[0] >= hw or ul[1] >= hh or br[0] < 0 or br[1] < 0:
                weight[j] = 0
            elif weight[j] > 0.5:
                self.draw_target(target[j], joints[j], (mu_x, mu_y), ul, br)
        return target, weight

    @property
    def stride(self) -> np.ndarray:
        """Input pixels per heatmap pixel, (x, y)."""
        return self.input_size / self.heatmap_size

    def window_centers(self, joints: np.ndarray) -> Sequence[tuple[float, float]]:
        """Per joint, the heatmap location the target window is centred on: here the rounded heatmap
        pixel ``int(x / stride + 0.5)`` (the official MSRA and UDP targets)."""
        stride = self.stride
        return [(int(x / stride[0] + 0.5), int(y / stride[1] + 0.5)) for x, y in np.asarray(joints)[:, :2]]

    @abstractmethod
    def draw_target(self, heatmap: np.ndarray, joint: np.ndarray, mu: tuple[float, float], ul: list[int],
                    br: list[int]) -> None:
        """Draw one joint's Gaussian into its ``(h, w)`` heatmap, in place (window ``ul``..``br``)."""

    def decode_heatmap_coords(self, heatmaps: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps ``(N, K, H, W)`` -> ``(coords in heatmap pixels (N, K, 2), maxvals (N, K, 1))``: the
        argmax (:func:`get_max_preds`) refined by the codec's :meth:`refine`."""
        hm = _as_numpy(heatmaps)
        coords, maxvals = get_max_preds(hm)
        return self.refine(coords, hm), maxvals

    @abstractmethod
    def refine(self, coords: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
        """Sub-pixel refinement of the argmax ``coords`` ``(N, K, 2)`` on ``heatmaps``."""

    @abstractmethod
    def heatmap_to_image(self, coords: np.ndarray, center: Point, scale: Point, heatmap_size: Point) -> np.ndarray:
        """One instance's heatmap coordinates ``(K, 2)`` -> image coordinates ``(K, 2)``."""

    def decode(
        self, heatmaps: np.ndarray | torch.Tensor, center: np.ndarray, scale: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Official ``get_final_preds``: heatmaps ``(N, K, H, W)`` + per-instance ``center``/``scale``
        ``(N, 2)`` -> ``(preds (N, K, 2) image coordinates, maxvals (N, K, 1) confidences)``."""
        hm = _as_numpy(heatmaps)
        coords, maxvals = self.decode_heatmap_coords(hm)
        size = (hm.shape[3], hm.shape[2])
        center, scale = np.asarray(center).reshape(-1, 2), np.asarray(scale).reshape(-1, 2)
        preds = np.zeros(coords.shape, dtype=coords.dtype)  # float32 for MSRA/DARK, as upstream
        for i in range(len(coords)):
            preds[i] = self.heatmap_to_image(coords[i], center[i], scale[i], size)
        return preds, maxvals


class MSRAHeatmap(HeatmapCodec):
    """The official HRNet codec (``JointsDataset.generate_target`` + ``get_final_preds``).

    Encoding: ``stride = input_size / heatmap_size``; the Gaussian peak (value 1, unnormalised) sits on the
    integer pixel ``mu = int(x / stride + 0.5)``, drawn inside a window of radius ``tmp_size = 3 sigma``.
    Decoding: argmax (:func:`get_max_preds`), optional quarter-pixel offset
    (:func:`quarter_offset_refine`, the official ``POST_PROCESS: true``), then :func:`transform_preds`.
    """

    name = "msra"
    flip_shift = True

    def __init__(self, input_size: Sequence[int] = (192, 256), heatmap_size: Sequence[int] = (48, 64),
                 sigma: float = 2.0, post_process: bool = True) -> None:
        super().__init__(input_size, heatmap_size, sigma)
        self.post_process = post_process

    def draw_target(self, heatmap: np.ndarray, joint: np.ndarray, mu: tuple[float, float], ul: list[int],
                    br: list[int]) -> None:
        size = 2 * self.sigma * 3 + 1
        _paste_window(heatmap, _gaussian_patch(size, size // 2, size // 2, self.sigma), ul, br)

    def refine(self, coords: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
        return quarter_offset_refine(coords, heatmaps) if self.post_process else coords

    def heatmap_to_image(self, coords: np.ndarray, center: Point, scale: Point, heatmap_size: Point) -> np.ndarray:
        return transform_preds(coords, center, scale, heatmap_size)[..., :2]


def dark_affine_transform(
    center: Sequence[float], scale: Sequence[float] | float, rot: float, output_size: Sequence[float], inv: bool = False
) -> np.ndarray:
    """DarkPose's ``get_affine_transform``: the official matrix in pixel-centre geometry.

    The ``scale * 200 - 1`` pixel span around ``center`` maps onto ``output_size - 1`` (width sets the zoom)
    and ``center`` onto ``(output_size - 1) / 2``, so the first and last pixel centres of the crop, the
    heatmap and the person region line up and a horizontal flip is exact. ``inv=True`` gives output ->
    image. Same float32 point triples and ``cv2.getAffineTransform`` as upstream.
    """
    span = np.asarray(scale, dtype=np.float64) * PIXEL_STD - 1.0
    size = np.asarray(output_size, dtype=np.float64) - 1.0
    return get_affine_transform(center, span, rot, size, inv=inv, pixel_std=1.0)


class DARKHeatmap(MSRAHeatmap):
    """DARK (official ``DarkPose``): unbiased sub-pixel Gaussian targets + distribution-aware decoding.

    Geometry: DarkPose centres a box ``[x, y, w, h]`` on ``x + (w - 1) / 2`` (:meth:`box_to_center_scale`)
    and replaces ``get_affine_transform`` by :func:`dark_affine_transform` (``size - 1``) for
    the crop, for the keypoints' heatmap locations (a second matrix to ``heatmap_size``) and for
    ``transform_preds``. A heatmap location is therefore ``(u - (input - 1) / 2) * (heatmap_w - 1) /
    (input_w - 1) + (heatmap - 1) / 2`` for an input-crop location ``u`` (one zoom, set by the widths).
    Encoding: the Gaussian peak sits at that exact location, evaluated over the whole heatmap; the weight
    is 0 when the ``3 sigma`` window (``int()`` corners) misses the heatmap. Decoding: argmax, then
    :func:`dark_refine` (blur ``blur_kernel`` = 11, log, Newton step), then the inverse heatmap matrix.
    Flipping is exact under this geometry, so the flip test does not shift the heatmap (as DarkPose).
    """

    name = "dark"
    flip_shift = False

    def __init__(self, input_size: Sequence[int] = (192, 256), heatmap_size: Sequence[int] = (48, 64),
                 sigma: float = 2.0, blur_kernel: int = 11) -> None:
        super().__init__(input_size, heatmap_size, sigma, post_process=True)
        self.blur_kernel = blur_kernel

    def box_to_center_scale(self, box: Sequence[float], padding: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
        """DarkPose ``_xywh2cs``: as the official one but ``center = (x + (w - 1) / 2, y + (h - 1) / 2)``."""
        center, scale = box_to_center_scale(box, self.aspect_ratio, padding)
        x, y, w, h = (float(v) for v in box[:4])
        center[:] = x + (w - 1) * 0.5, y + (h - 1) * 0.5
        return center, scale

    def crop_matrix(self, center: Sequence[float], scale: Sequence[float], rot: float = 0.0) -> np.ndarray:
        """The 2x3 image -> input matrix (:func:`dark_affine_transform` to ``input_size``)."""
        return dark_affine_transform(center, scale, rot, self.input_size)

    def heatmap_keypoints(self, joints: np.ndarray) -> np.ndarray:
        """Input-crop keypoints ``(K, >=2)`` -> heatmap locations ``(K, 2)`` (DarkPose's heatmap matrix)."""
        zoom = (self.heatmap_size[0] - 1.0) / (self.input_size[0] - 1.0)
        return (np.asarray(joints, dtype=np.float64)[:, 0:2] - (self.input_size - 1.0) / 2) * zoom + (
            self.heatmap_size - 1.0
        ) / 2

    def window_centers(self, joints: np.ndarray) -> Sequence[tuple[float, float]]:
        """The exact heatmap location (:meth:`heatmap_keypoints`): the peak sits on it."""
        return [(float(x), float(y)) for x, y in self.heatmap_keypoints(joints)]

    def draw_target(self, heatmap: np.ndarray, joint: np.ndarray, mu: tuple[float, float], ul: list[int],
                    br: list[int]) -> None:
        """The Gaussian evaluated over the whole heatmap (DarkPose's unbiased target)."""
        hh, hw = heatmap.shape
        x = np.arange(0, hw, 1, np.float32)
        y = np.arange(0, hh, 1, np.float32)[:, np.newaxis]
        heatmap[:] = np.exp(-((x - mu[0]) ** 2 + (y - mu[1]) ** 2) / (2 * self.sigma**2))

    def refine(self, coords: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
        return dark_refine(coords, heatmaps, self.blur_kernel)

    def heatmap_to_image(self, coords: np.ndarray, center: Point, scale: Point, heatmap_size: Point) -> np.ndarray:
        """DarkPose ``transform_preds``: the inverse :func:`dark_affine_transform` to ``heatmap_size``."""
        return affine_transform(coords[..., 0:2], dark_affine_transform(center, scale, 0, heatmap_size, inv=True))


class UDPHeatmap(HeatmapCodec):
    """UDP (official ``UDP-Pose``): unbiased data processing with pixel-centre (``size - 1``) geometry.

    Crop: ``get_warpmatrix`` (:meth:`crop_matrix`, input -> image, used with ``WARP_INVERSE_MAP``).
    Keypoints: ``u = (R(-rot) (p - c) + S/2) * (input - 1) / S`` with ``S = scale * 200``.
    Encoding: ``stride = (input - 1) / (heatmap - 1)``; the Gaussian window is placed on
    ``int(x / stride + 0.5)`` but the peak sits at the exact sub-pixel location.
    Decoding: argmax, :func:`udp_refine`, then ``x = u * S / (heatmap - 1) + c - S / 2``.
    Flipping is exact under this geometry, so the flip test does not shift the heatmap.
    """

    name = "udp"
    flip_shift = False

    def __init__(self, input_size: Sequence[int] = (192, 256), heatmap_size: Sequence[int] = (48, 64),
                 sigma: float = 2.0, blur_kernel: int = 7) -> None:
        super().__init__(input_size, heatmap_size, sigma)
        self.blur_kernel = blur_kernel

    def crop_matrix(self, center: Sequence[float], scale: Sequence[float], rot: float = 0.0) -> np.ndarray:
        """UDP ``get_warpmatrix``: the 2x3 matrix mapping *input* pixels to *image* pixels."""
        size_target = np.asarray(scale) * PIXEL_STD
        size_input = np.asarray(center) * 2.0  # upstream passes the image "size" 2c, so 0.5 * size = c
        size_dst = self.input_size - 1.0
        theta = rot / 180.0 * math.pi
        cs, sn = math.cos(theta), math.sin(theta)
        sx, sy = size_target[0] / size_dst[0], size_target[1] / size_dst[1]
        m = np.zeros((2, 3), dtype=np.float32)
        m[0, 0], m[0, 1] = cs * sx, sn * sy
        m[0, 2] = -0.5 * size_target[0] * cs - 0.5 * size_target[1] * sn + 0.5 * size_input[0]
        m[1, 0], m[1, 1] = -sn * sx, cs * sy
        m[1, 2] = 0.5 * size_target[0] * sn - 0.5 * size_target[1] * cs + 0.5 * size_input[1]
        return m

    def warp(self, image: np.ndarray, center: Sequence[float], scale: Sequence[float], rot: float = 0.0) -> np.ndarray:
        m = self.crop_matrix(center, scale, rot)
        return cv2.warpAffine(
            image,
            m,
            (int(self.input_size[0]), int(self.input_size[1])),
            flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
        )

    def input_keypoints(self, joints: np.ndarray, joints_vis: np.ndarray, center: Point, scale: Point,
                        rot: float = 0.0) -> np.ndarray:
        """UDP ``rotate_points`` (no clipping); applied to every joint, as upstream."""
        out = np.array(joints, dtype=np.float64)
        size_target = np.asarray(scale) * PIXEL_STD
        sx = (self.input_size[0] - 1.0) / size_target[0]
        sy = (self.input_size[1] - 1.0) / size_target[1]
        rad = rot / 180.0 * math.pi
        sn, cs = -math.sin(rad), math.cos(rad)
        x, y = out[:, 0] - center[0], out[:, 1] - center[1]
        out[:, 0] = (cs * x + sn * y + size_target[0] * 0.5) * sx
        out[:, 1] = (-sn * x + cs * y + size_target[1] * 0.5) * sy
        return out

    @property
    def stride(self) -> np.ndarray:
        """Input pixel centres per heatmap pixel centre, (x, y): ``(input - 1) / (heatmap - 1)``."""
        return (self.input_size - 1.0) / (self.heatmap_size - 1.0)

    def draw_target(self, heatmap: np.ndarray, joint: np.ndarray, mu: tuple[float, float], ul: list[int],
                    br: list[int]) -> None:
        size, stride = 2 * self.sigma * 3 + 1, self.stride
        x0 = size // 2 + joint[0] / stride[0] - mu[0]
        y0 = size // 2 + joint[1] / stride[1] - mu[1]
        _paste_window(heatmap, _gaussian_patch(size, x0, y0, self.sigma), ul, br)

    def refine(self, coords: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
        return udp_refine(coords, heatmaps, self.blur_kernel)

    def heatmap_to_image(self, coords: np.ndarray, center: Point, scale: Point, heatmap_size: Point) -> np.ndarray:
        """UDP ``transform_preds``: ``x = u * S / (heatmap_w - 1) + c_x - S / 2`` (likewise y)."""
        s = np.asarray(scale) * PIXEL_STD
        out = np.zeros(np.shape(coords)[:-1] + (2,))
        out[..., 0] = coords[..., 0] * (s[0] / (heatmap_size[0] - 1.0)) + center[0] - s[0] * 0.5
        out[..., 1] = coords[..., 1] * (s[1] / (heatmap_size[1] - 1.0)) + center[1] - s[1] * 0.5
        return out


CODECS: dict[str, type[HeatmapCodec]] = {"msra": MSRAHeatmap, "dark": DARKHeatmap, "udp": UDPHeatmap}


def build_codec(
    name: str, input_size: Sequence[int], heatmap_size: Sequence[int], sigma: float = 2.0, **options
) -> HeatmapCodec:
    """A codec by name (``msra``, ``dark``, ``udp``); ``options`` go to its constructor."""
    if name not in CODECS:
        raise ConfigError(
            f"unknown heatmap codec {name!r}; expected one of {sorted(CODECS)}.{did_you_mean(name, CODECS)}"
        )
    return CODECS[name](input_size=input_size, heatmap_size=heatmap_size, sigma=sigma, **options)
