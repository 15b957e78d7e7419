"""Colours, textured backgrounds and object fills for the synthetic datasets.

Everything takes a ``numpy.random.Generator`` so that a dataset is reproducible from its seed, and
returns RGB ``uint8`` arrays of shape (H, W, 3).
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

BACKGROUND_KINDS = ("noise", "stripes", "gradient", "checker")


def hsv_colour(hue: float, sat: float, val: float) -> np.ndarray:
    """An RGB ``uint8`` colour from hue in degrees (wrapped) and saturation/value in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb((hue % 360.0) / 360.0, sat, val)
    return np.array([round(r * 255), round(g * 255), round(b * 255)], dtype=np.uint8)


def random_colour(
    rng: np.random.Generator,
    hue: tuple[float, float] = (0.0, 360.0),
    sat: tuple[float, float] = (0.4, 1.0),
    val: tuple[float, float] = (0.4, 1.0),
) -> np.ndarray:
    """A random RGB colour with hue/saturation/value drawn uniformly from the given ranges."""
    return hsv_colour(rng.uniform(*hue), rng.uniform(*sat), rng.uniform(*val))


def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w]
    return xs.astype(np.float32), ys.astype(np.float32)


def _blend(c0: np.ndarray, c1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel mix of two colours with weights ``t`` in [0, 1] (shape (H, W))."""
    t = t[..., None]
    return (c0.astype(np.float32) * (1.0 - t) + c1.astype(np.float32) * t).clip(0, 255).astype(np.uint8)


def stripes(rng: np.random.Generator, h: int, w: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Soft sinusoidal stripes at a random angle and period."""
    xs, ys = _coords(h, w)
    angle = rng.uniform(0.0, np.pi)
    period = rng.uniform(5.0, 24.0)
    phase = rng.uniform(0.0, 2 * np.pi)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period + phase)
    return _blend(c0, c1, t)


def background(rng: np.random.Generator, h: int, w: int, kinds: tuple[str, ...] = BACKGROUND_KINDS) -> np.ndarray:
    """A textured background: blobby colour noise, stripes, a linear gradient or a checkerboard.

    Colours are mostly desaturated so that foreground objects stay visible, but not so much that
    colour alone separates them.
    """
    kind = kinds[rng.integers(len(kinds))]
    c0 = random_colour(rng, sat=(0.0, 0.6), val=(0.2, 0.95))
    c1 = random_colour(rng, sat=(0.0, 0.6), val=(0.2, 0.95))
    if kind == "noise":
        cell = int(rng.integers(8, 33))
        low = rng.uniform(0, 255, size=(h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        low = 0.5 * low + 0.5 * (c0.astype(np.float32) + c1.astype(np.float32)) / 2
        return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)
    if kind == "stripes":
        return stripes(rng, h, w, c0, c1)
    xs, ys = _coords(h, w)
    if kind == "gradient":
        angle = rng.uniform(0.0, 2 * np.pi)
        proj = xs * np.cos(angle) + ys * np.sin(angle)
        return _blend(c0, c1, (proj - proj.min()) / max(float(np.ptp(proj)), 1.0))
    cell = int(rng.integers(6, 25))
    return _blend(c0, c1, ((xs // cell + ys // cell) % 2).astype(np.float32))


def object_fill(rng: np.random.Generator, h: int, w: int, colour: np.ndarray) -> np.ndarray:
    """The paint of a foreground object: a solid colour, stripes of two shades, or a shaded colour."""
    kind = rng.integers(3)
    if kind == 0:
        return np.broadcast_to(colour, (h, w, 3))
    shade = (colour.astype(np.float32) * rng.uniform(0.45, 0.75)).astype(np.uint8)
    if kind == 1:
        return stripes(rng, h, w, colour, shade)
    xs, ys = _coords(h, w)
    angle = rng.uniform(0.0, 2 * np.pi)
    proj = xs * np.cos(angle) + ys * np.sin(angle)
    return _blend(colour, shade, 0.6 * (proj - proj.min()) / max(float(np.ptp(proj)), 1.0))


def paint_object(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Paint an object's :func:`object_fill` into ``image`` where ``mask`` is set, in place."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    if w == 0 or h == 0:
        return
    box = mask[y : y + h, x : x + w]
    image[y : y + h, x : x + w][box] = object_fill(rng, h, w, colour)[box]


def finish(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Camera-like degradation: a slight blur and additive Gaussian noise."""
    sigma = rng.uniform(0.3, 0.9)
    blurred = cv2.GaussianBlur(image, (0, 0), sigma).astype(np.float32)
    noise = rng.standard_normal(size=image.shape, dtype=np.float32) * rng.uniform(1.0, 6.0)
    return (blurred + noise).clip(0, 255).astype(np.uint8)
