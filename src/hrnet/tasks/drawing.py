"""Overlay pieces every task draws with (OpenCV, on ``uint8`` ``(H, W, 3)`` arrays, in place).

Made to stay readable on real photos: a box is a bright line over a dark outline, so that a light box
shows on a light background and a dark one on a dark background; a caption is text on a filled
rectangle, moved off the captions already placed and kept inside the image; a legend lists colour
swatches with names on a dark panel. Sizes follow the image, so a 4K photo gets lines a 320-px one would
not need. Colours are given in the canvas's channel order (RGB or BGR alike).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "Rect",
    "EDGE_COLOR",
    "line_width",
    "text_scale",
    "label_color",
    "draw_box",
    "LabelPlacer",
    "draw_legend",
]

#: ``(x0, y0, x1, y1)`` integer pixel rectangle, corners included
Rect = tuple[int, int, int, int]
_FONT = cv2.FONT_HERSHEY_SIMPLEX
#: the dark edge under bright lines and around labels
EDGE_COLOR = (20, 20, 20)


def line_width(shape: Sequence[int]) -> int:
    """The box line width for an image of ``shape`` (H, W, ...): 2 px at 640, growing with the longer side."""
    return max(1, round(max(shape[:2]) / 320))


def text_scale(shape: Sequence[int]) -> float:
    """OpenCV's font scale for captions on an image of ``shape``: readable, not dominant."""
    return max(0.35, max(shape[:2]) / 1600)


def label_color(label: int) -> tuple[int, int, int]:
    """A fixed, well-spread, bright colour per integer label (golden-ratio hue steps)."""
    hue = (label * 0.618033988749895) % 1.0
    rgb = np.clip(np.abs((hue * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
    return tuple(int(60 + 195 * c) for c in rgb)


def _ink(color: Sequence[int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on a fill of ``color`` (mean brightness is enough here)."""
    return (0, 0, 0) if sum(color) / 3 > 140 else (255, 255, 255)


def draw_box(canvas: np.ndarray, xyxy: Sequence[float], color: Sequence[int], width: int | None = None) -> None:
    """Outline box ``xyxy`` on ``canvas``: a ``color`` line of ``width`` (:func:`line_width` by default)
    over a dark one showing at least a pixel (half the width) on either side, visible on any background."""
    width = width or line_width(canvas.shape)
    edge = max(1, (width + 1) // 2)
    x0, y0, x1, y1 = (int(round(v)) for v in xyxy)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), EDGE_COLOR, width + 2 * edge, cv2.LINE_8)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), tuple(int(c) for c in color), width, cv2.LINE_8)


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


class LabelPlacer:
    """Captions on one canvas that never cover each other: each is placed where asked (above an anchor
    point, e.g. a box's top-left corner), else moved down (then up) by its own height until it is clear of
    the ones placed before, and always kept inside the image. :attr:`placed` lists their rectangles."""

    def __init__(self, canvas: np.ndarray, scale: float | None = None) -> None:
        self.canvas = canvas
        self.scale = scale or text_scale(canvas.shape)
        self.thickness = max(1, round(self.scale * 1.5))
        self.placed: list[Rect] = []

    def _metrics(self, text: str) -> tuple[int, int, int, int]:
        """Text width, height, baseline and the padding around it."""
        (w, h), baseline = cv2.getTextSize(text, _FONT, self.scale, self.thickness)
        return w, h, baseline, max(2, round(h * 0.3))

    def size(self, text: str) -> tuple[int, int]:
        """The filled rectangle's width and height for ``text``."""
        w, h, baseline, pad = self._metrics(text)
        return w + 2 * pad, h + baseline + 2 * pad

    def _clamped(self, x: int, y: int, w: int, h: int) -> Rect:
        height, width = self.canvas.shape[:2]
        x = min(max(0, x), max(0, width - w))
        y = min(max(0, y), max(0, height - h))
        return x, y, x + w - 1, y + h - 1

    def place(self, text: str, anchor: Sequence[float], color: Sequence[int]) -> Rect:
        """Draw ``text`` on a ``color`` fill just above ``anchor`` (x, y) (or the nearest clear spot below
        or above it) and return where it went."""
        w, h = self.size(text)
        x, y = int(round(anchor[0])), int(round(anchor[1])) - h
        limit = self.canvas.shape[0] // max(1, h) + 1
        candidates = [self._clamped(x, y + step * h * sign, w, h)
                      for step in range(limit + 1) for sign in ((1,) if step == 0 else (1, -1))]
        rect = next((r for r in candidates if not any(_overlaps(r, p) for p in self.placed)), candidates[0])
        self.placed.append(rect)
        x0, y0, x1, y1 = rect
        fill = tuple(int(c) for c in color)
        cv2.rectangle(self.canvas, (x0, y0), (x1, y1), fill, -1)
        cv2.rectangle(self.canvas, (x0, y0), (x1, y1), EDGE_COLOR, 1)
        _, _, baseline, pad = self._metrics(text)
        cv2.putText(self.canvas, text, (x0 + pad, y1 - pad - baseline + 1), _FONT, self.scale, _ink(fill),
                    self.thickness, cv2.LINE_AA)
        return rect


def draw_legend(canvas: np.ndarray, entries: Sequence[tuple[str, Sequence[int]]], corner: str = "top-left",
                scale: float | None = None) -> Rect | None:
    """A legend of ``(name, colour)`` entries on ``canvas``: one row per entry, a colour swatch then the
    name, on a dark panel at ``corner`` ("top-left" or "top-right"); entries that do not fit in one column
    go on to the next. Returns the panel's rectangle (None without entries)."""
    if not entries:
        return None
    scale = scale or text_scale(canvas.shape)
    thickness = max(1, round(scale * 1.5))
    (_, text_h), baseline = cv2.getTextSize("Ag", _FONT, scale, thickness)
    row = text_h + baseline + max(4, text_h // 2)
    swatch, pad = text_h + baseline, max(4, text_h // 2)
    height, width = canvas.shape[:2]
    per_column = max(1, (height - 2 * pad) // row)
    columns = [entries[i:i + per_column] for i in range(0, len(entries), per_column)]
    widths = [swatch + pad + max(cv2.getTextSize(name, _FONT, scale, thickness)[0][0] for name, _ in col)
              for col in columns]
    panel_w = min(width, sum(widths) + pad * (len(columns) + 1))
    panel_h = min(height, len(columns[0]) * row + pad)
    x0 = 0 if corner == "top-left" else max(0, width - panel_w)
    region = canvas[0:panel_h, x0:x0 + panel_w]
    region[:] = (region.astype(np.uint16) * 2 // 7).astype(np.uint8)  # darkened: white names stay legible
    x = x0 + pad
    for col, col_w in zip(columns, widths, strict=True):
        for i, (name, color) in enumerate(col):
            y = pad + i * row
            cv2.rectangle(canvas, (x, y), (x + swatch - 1, y + swatch - 1), tuple(int(c) for c in color), -1)
            cv2.rectangle(canvas, (x, y), (x + swatch - 1, y + swatch - 1), (255, 255, 255), 1)
            cv2.putText(canvas, name, (x + swatch + pad, y + text_h), _FONT, scale, (255, 255, 255), thickness,
                        cv2.LINE_AA)
        x += col_w + pad
    return x0, 0, x0 + panel_w - 1, panel_h - 1
