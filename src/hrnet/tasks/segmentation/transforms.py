"""Image/label transforms of the official HRNet segmentation code (``lib/datasets/base_dataset.py``).

Images are OpenCV ``uint8`` BGR arrays ``(H, W, 3)`` until :func:`normalize_image` turns them into
float32 RGB; labels are integer class maps ``(H, W)``. Every deterministic step is a plain function with
the official arithmetic (``int(x + 0.5)`` rounding of sizes, ``cv2.INTER_LINEAR`` for images and
``cv2.INTER_NEAREST`` for labels, padding at the bottom/right). The random steps are small callables
``step(image, label, rng) -> (image, label)`` so that each dataset lists its official training recipe as
a :class:`Compose` of them, drawing from a ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ...media import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize_image",
    "pad_to_size",
    "resize_long_side",
    "resize_short_side",
    "resize_to",
    "official_random_scale",
    "flip_horizontal",
    "swap_label_pairs",
    "Compose",
    "RandomScaleCrop",
    "RandomFlip",
    "RandomBrightness",
    "RandomColorJitter",
    "ResizeShortSide",
    "ResizeFixed",
]

Size = tuple[int, int]  # (height, width), as the official ``crop_size``


def normalize_image(
    image_bgr: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> np.ndarray:
    """BGR ``uint8`` -> RGB float32 ``(x / 255 - mean) / std`` (the official ``input_transform``).

    The subtraction and division happen in float64 and are stored back in float32, as the official
    in-place numpy operations do, so results agree bit for bit.
    """
    rgb = image_bgr.astype(np.float32)[:, :, ::-1] / 255.0
    rgb -= np.asarray(mean, dtype=np.float64)
    rgb /= np.asarray(std, dtype=np.float64)
    return rgb


def pad_to_size(array: np.ndarray, size: Size, value: float | Sequence[float]) -> np.ndarray:
    """Pad at the bottom and right up to at least ``size`` (the official ``pad_image``); never crops."""
    pad_h = max(size[0] - array.shape[0], 0)
    pad_w = max(size[1] - array.shape[1], 0)
    if pad_h == 0 and pad_w == 0:
        return array.copy()
    value = tuple(float(v) for v in value) if isinstance(value, Sequence | np.ndarray) else (float(value),)
    return cv2.copyMakeBorder(array, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=value)


def _resize_pair(image: np.ndarray, label: np.ndarray | None, new_h: int, new_w: int):
    image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    if label is None:
        return image, None
    return image, cv2.resize(label, (new_w, new_h), interpolation=cv2.INTER_NEAREST)


def resize_long_side(image: np.ndarray, long_size: int, label: np.ndarray | None = None):
    """Resize so that the long side is ``long_size`` (the official ``multi_scale_aug`` without the crop).

    A square image counts as landscape (its width gets ``long_size``); the other side is
    ``int(side * long_size / long + 0.5)``. Returns ``(image, label)``; ``label`` is ``None`` if not given.
    """
    h, w = image.shape[:2]
    if h > w:
        new_h, new_w = long_size, int(w * long_size / h + 0.5)
    else:
        new_h, new_w = int(h * long_size / w + 0.5), long_size
    return _resize_pair(image, label, new_h, new_w)


def resize_short_side(
    image: np.ndarray,
    short_size: int,
    label: np.ndarray | None = None,
    fit_stride: int | None = None,
    ignore_index: int = 255,
    mean: Sequence[float] = IMAGENET_MEAN,
):
    """Resize the short side to ``short_size`` (official ``resize_short_length``, PASCAL-Context/ADE20K).

    With ``fit_stride`` the result is padded at the bottom/right to a multiple of it: the image with the
    mean colour (in BGR 0-255, so it normalises to 0), the label with ``ignore_index``. Returns
    ``(image, label, (pad_h, pad_w))``.
    """
    h, w = image.shape[:2]
    if h < w:
        new_h, new_w = short_size, int(w * short_size / h + 0.5)
    else:
        new_h, new_w = int(h * short_size / w + 0.5), short_size
    image, label = _resize_pair(image, label, new_h, new_w)
    pad_h = pad_w = 0
    if fit_stride is not None:
        pad_h = -new_h % fit_stride
        pad_w = -new_w % fit_stride
        if pad_h or pad_w:
            fill = tuple(m * 255 for m in mean[::-1])
            image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=fill)
            if label is not None:
                label = cv2.copyMakeBorder(label, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=ignore_index)
    return image, label, (pad_h, pad_w)


def resize_to(image: np.ndarray, size: Size, label: np.ndarray | None = None):
    """Resize to exactly ``size = (h, w)`` (LIP's ``resize_image``). Returns ``(image, label)``."""
    return _resize_pair(image, label, size[0], size[1])


def official_random_scale(rng: np.random.Generator, scale_factor: int) -> float:
    """``0.5 + randint(0, scale_factor) / 10``: 0.5 to 2.1 in steps of 0.1 for Cityscapes (factor 16)."""
    return 0.5 + int(rng.integers(0, scale_factor + 1)) / 10.0


def swap_label_pairs(label: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Exchange class ids ``a <-> b`` for each pair (left/right parts after a mirror, e.g. LIP arms)."""
    out = label.copy()
    for a, b in pairs:
        out[label == a] = b
        out[label == b] = a
    return out


def flip_horizontal(image: np.ndarray, label: np.ndarray | None = None, swap_pairs: Sequence[tuple[int, int]] = ()):
    """Mirror an ``(H, W, ...)`` image and its label; swap the ``swap_pairs`` class ids in the label."""
    image = image[:, ::-1].copy()
    if label is None:
        return image, None
    label = label[:, ::-1]
    return image, swap_label_pairs(label, swap_pairs) if swap_pairs else label.copy()


class Compose:
    """Apply random steps in order: ``Compose([a, b])(image, label, rng)``."""

    def __init__(self, steps: Sequence) -> None:
        self.steps = list(steps)

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        for step in self.steps:
            image, label = step(image, label, rng)
        return image, label

    def __repr__(self) -> str:
        return f"Compose({self.steps})"


@dataclass
class RandomScaleCrop:
    """Random rescale, pad (image 0, label ``ignore_index``) and random crop to ``crop_size``.

    The official recipe draws ``scale = 0.5 + randint(0, scale_factor) / 10`` and resizes the long side
    to ``int(base_size * scale + 0.5)``. With ``scale_range = (lo, hi)`` the scale is uniform in that
    range instead; ``base_size=None`` scales the image's own long side.
    """

    crop_size: Size
    base_size: int | None
    scale_factor: int = 16
    scale_range: tuple[float, float] | None = None
    ignore_index: int = 255

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        if self.scale_range is not None:
            scale = float(rng.uniform(*self.scale_range))
        else:
            scale = official_random_scale(rng, self.scale_factor)
        base = self.base_size if self.base_size is not None else max(image.shape[:2])
        image, label = resize_long_side(image, int(base * scale + 0.5), label)
        return self.random_crop(image, label, rng)

    def random_crop(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        """Pad up to the crop size, then cut a crop at a uniform offset (official ``rand_crop``)."""
        ch, cw = self.crop_size
        image = pad_to_size(image, self.crop_size, (0.0, 0.0, 0.0))
        label = pad_to_size(label, self.crop_size, self.ignore_index)
        x = int(rng.integers(0, label.shape[1] - cw + 1))
        y = int(rng.integers(0, label.shape[0] - ch + 1))
        return image[y : y + ch, x : x + cw], label[y : y + ch, x : x + cw]


@dataclass
class RandomFlip:
    """Horizontal flip with probability ``p``; ``swap_pairs`` exchanges left/right class ids (LIP)."""

    p: float = 0.5
    swap_pairs: tuple[tuple[int, int], ...] = ()

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        if rng.random() < self.p:
            return flip_horizontal(image, label, self.swap_pairs)
        return image, label


@dataclass
class RandomBrightness:
    """With probability 0.5 add one integer shift in ``[-shift, shift]`` to a ``uint8`` image, clipped
    (official ``random_brightness``, ``TRAIN.RANDOM_BRIGHTNESS_SHIFT_VALUE``)."""

    shift: int = 10

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        if rng.random() < 0.5:
            return image, label
        delta = int(rng.integers(-self.shift, self.shift + 1))
        shifted = np.clip(np.around(image.astype(np.float32) + delta), 0, 255)
        return shifted.astype(np.uint8), label


@dataclass
class RandomColorJitter:
    """Photometric jitter of a ``uint8`` BGR image (not in the official recipe): brightness, contrast and
    saturation factors drawn uniformly from ``[1 - x, 1 + x]``, applied in that order, then clipped."""

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        out = image.astype(np.float32)
        if self.brightness > 0:
            out *= rng.uniform(1 - self.brightness, 1 + self.brightness)
        if self.contrast > 0:
            mean = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).mean()
            out = (out - mean) * rng.uniform(1 - self.contrast, 1 + self.contrast) + mean
        if self.saturation > 0:
            gray = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)[..., None]
            out = (out - gray) * rng.uniform(1 - self.saturation, 1 + self.saturation) + gray
        return np.clip(np.around(out), 0, 255).astype(np.uint8), label


@dataclass
class ResizeShortSide:
    """Deterministic short-side resize before the random steps (PASCAL-Context and ADE20K training)."""

    short_size: int

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        image, label, _ = resize_short_side(image, self.short_size, label)
        return image, label


@dataclass
class ResizeFixed:
    """Deterministic resize to ``size = (h, w)`` (LIP resizes every person crop to 473x473)."""

    size: Size

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
        return resize_to(image, self.size, label)
