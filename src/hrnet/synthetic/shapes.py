"""Geometric shapes as polygons and boolean masks, rasterised with sub-pixel precision by OpenCV.

A shape is given by its kind, its centre (x, y) in pixels, its radius (the circumscribed circle) and
a rotation angle in radians. Pixel centres sit at integer coordinates, as in OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np

#: shapes that are one simple polygon (usable as a COCO polygon annotation)
POLYGON_SHAPES = ("disc", "square", "triangle", "star", "cross", "bar")
#: all shapes; ``ring`` has a hole and ``crescent`` is a disc minus a disc
SHAPES = (*POLYGON_SHAPES, "ring", "crescent")

_SUBPIXEL_BITS = 4


def _regular(n: int, radius: float, phase: float = 0.0) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(n) / n
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _unit_outline(kind: str) -> np.ndarray:
    """The outline of a shape of radius 1 centred at the origin, unrotated, as (N, 2) points."""
    if kind == "disc":
        return _regular(48, 1.0)
    if kind == "square":
        return _regular(4, 1.0, np.pi / 4)
    if kind == "triangle":
        return _regular(3, 1.0, -np.pi / 2)
    if kind == "star":
        outer, inner = _regular(5, 1.0, -np.pi / 2), _regular(5, 0.45, -np.pi / 2 + np.pi / 5)
        return np.stack([outer, inner], axis=1).reshape(-1, 2)
    if kind == "cross":
        a, b = 1.0, 0.33
        return np.array(
            [
                [b, -a],
                [b, -b],
                [a, -b],
                [a, b],
                [b, b],
                [b, a],
                [-b, a],
                [-b, b],
                [-a, b],
                [-a, -b],
                [-b, -b],
                [-b, -a],
            ]
        )
    if kind == "bar":
        return np.array([[1.0, 0.28], [-1.0, 0.28], [-1.0, -0.28], [1.0, -0.28]])
    raise ValueError(f"{kind!r} is not a polygon shape; polygon shapes are {POLYGON_SHAPES}")


def shape_polygon(kind: str, center: tuple[float, float], radius: float, angle: float) -> np.ndarray:
    """Vertices (N, 2) in pixels of a polygon shape (see ``POLYGON_SHAPES``)."""
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    return _unit_outline(kind) @ rotation.T * radius + np.asarray(center, dtype=np.float64)


def fill_polygon(mask: np.ndarray, points: np.ndarray, value: int = 1) -> None:
    """Rasterise a polygon into a ``uint8`` array in place, with sub-pixel vertex positions."""
    pts = np.round(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(mask, [pts], value, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)


def shape_mask(
    kind: str, size: tuple[int, int], center: tuple[float, float], radius: float, angle: float
) -> np.ndarray:
    """Boolean (H, W) mask of a shape on an image of ``size`` = (height, width)."""
    mask = np.zeros(size, dtype=np.uint8)
    if kind in POLYGON_SHAPES:
        fill_polygon(mask, shape_polygon(kind, center, radius, angle))
    elif kind == "ring":
        fill_polygon(mask, shape_polygon("disc", center, radius, 0.0))
        fill_polygon(mask, shape_polygon("disc", center, 0.55 * radius, 0.0), 0)
    elif kind == "crescent":
        fill_polygon(mask, shape_polygon("disc", center, radius, 0.0))
        offset = 0.5 * radius * np.array([np.cos(angle), np.sin(angle)])
        fill_polygon(mask, shape_polygon("disc", tuple(np.asarray(center) + offset), 0.85 * radius, 0.0), 0)
    else:
        raise ValueError(f"unknown shape {kind!r}; shapes are {SHAPES}")
    return mask.astype(bool)
