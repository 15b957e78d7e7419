"""Drawing a classification: the top classes and their probabilities in a panel at the image's top left."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["draw_top_k"]


def draw_top_k(image_rgb: np.ndarray, names: Sequence[str], scores: Sequence[float]) -> np.ndarray:
    """A copy of ``image_rgb`` with one ``name  score`` line per class, white on a dark panel (readable on
    any photo), sized to the image."""
    canvas = np.ascontiguousarray(image_rgb).copy()
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.35, min(canvas.shape[:2]) / 500)
    lines = [f"{name}  {score:.2f}" for name, score in zip(names, scores, strict=True)]
    sizes = [cv2.getTextSize(line, font, scale, 1) for line in lines]
    height = max((h + base for (_, h), base in sizes), default=0) + 4
    width = max((w for (w, _), _ in sizes), default=0) + 8
    if lines:
        panel = canvas[: height * len(lines) + 4, : width]
        panel[:] = (panel * 0.35).astype(np.uint8)
    for row, line in enumerate(lines):
        cv2.putText(canvas, line, (4, (row + 1) * height), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
