"""Drawing predicted poses: skeleton lines, keypoint dots and their confidences, on an RGB image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from .meta import KeypointMeta

__all__ = ["draw_poses"]

_LEFT, _RIGHT, _CENTRE = (255, 128, 0), (0, 160, 255), (0, 220, 120)  # RGB


def _side(name: str) -> tuple[int, int, int]:
    if name.startswith(("left", "l_")):
        return _LEFT
    if name.startswith(("right", "r_")):
        return _RIGHT
    return _CENTRE


def draw_poses(
    image_rgb: np.ndarray,
    instances: Sequence[dict[str, Any]],
    meta: KeypointMeta,
    kpt_thre: float = 0.2,
    show_scores: bool = True,
    draw_boxes: bool = True,
) -> np.ndarray:
    """A copy of ``image_rgb`` with each instance's skeleton and keypoints drawn.

    ``instances`` hold ``keypoints`` ``(K, 3)`` (x, y, confidence), optionally ``box`` (xywh) and ``score``.
    Keypoints with confidence ``<= kpt_thre`` and limbs touching them are not drawn; left parts are orange,
    right parts blue. With ``show_scores`` each keypoint's confidence is written beside it (two digits).
    """
    canvas = np.ascontiguousarray(image_rgb).copy()
    size = max(canvas.shape[:2])
    thickness = max(1, round(size / 300))
    radius = thickness + 1
    font = 0.3 * max(1.0, size / 600)
    for inst in instances:
        kpts = np.asarray(inst["keypoints"], dtype=np.float64).reshape(-1, 3)
        if draw_boxes and inst.get("box") is not None:
            x, y, w, h = (int(round(v)) for v in inst["box"])
            cv2.rectangle(canvas, (x, y), (x + w, y + h), (200, 200, 200), 1, cv2.LINE_AA)
            if inst.get("score") is not None:
                cv2.putText(
                    canvas,
                    f"{inst['score']:.2f}",
                    (x, max(0, y - 3)),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    font * 1.2,
                    (230, 230, 230),
                    1,
                    cv2.LINE_AA,
                )
        visible = kpts[:, 2] > kpt_thre
        for a, b in meta.skeleton:
            if visible[a] and visible[b]:
                colour = _side(meta.keypoints[a]) if _side(meta.keypoints[a]) == _side(meta.keypoints[b]) else _CENTRE
                pa = (int(round(kpts[a, 0])), int(round(kpts[a, 1])))
                pb = (int(round(kpts[b, 0])), int(round(kpts[b, 1])))
                cv2.line(canvas, pa, pb, colour, thickness, cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            p = (int(round(kpts[k, 0])), int(round(kpts[k, 1])))
            cv2.circle(canvas, p, radius, _side(meta.keypoints[k]), -1, cv2.LINE_AA)
            if show_scores:
                cv2.putText(
                    canvas,
                    f"{kpts[k, 2]:.2f}",
                    (p[0] + radius + 1, p[1] - radius),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    font,
                    (255, 255, 255),
                    1,
                    cv2.LINE_AA,
                )
    return canvas
