"""Drawing predicted poses: skeleton lines, keypoint dots, boxes and (on request) confidences, on an RGB image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ..drawing import EDGE_COLOR, LabelPlacer, draw_box, label_color, line_width
from .meta import KeypointMeta

__all__ = ["draw_poses"]

_LEFT, _RIGHT, _CENTRE = (255, 128, 0), (0, 160, 255), (0, 220, 120)  # RGB
_BOX = (235, 235, 235)


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
    show_scores: bool = False,
    draw_boxes: bool = True,
) -> np.ndarray:
    """A copy of ``image_rgb`` with each instance's skeleton and keypoints drawn.

    ``instances`` hold ``keypoints`` ``(K, 3)`` (x, y, confidence), optionally ``box`` (xywh), ``score``
    and ``track_id``. Keypoints with confidence ``<= kpt_thre`` and limbs touching them are not drawn; left
    parts are orange, right parts blue, each over a dark edge. With ``draw_boxes`` a box is outlined (in
    its track's colour when it has one) and captioned ``#<track id> <score>``; only with ``show_scores``
    is each keypoint's confidence written beside it (captions never overlap, so a crowded head stays
    legible).
    """
    canvas = np.ascontiguousarray(image_rgb).copy()
    thickness = line_width(canvas.shape)
    radius = thickness + 1
    placer = LabelPlacer(canvas)
    score_placer = LabelPlacer(canvas, placer.scale * 0.8)
    score_placer.placed = placer.placed  # box captions and keypoint scores keep clear of each other
    for inst in instances:
        kpts = np.asarray(inst["keypoints"], dtype=np.float64).reshape(-1, 3)
        if draw_boxes and inst.get("box") is not None:
            x, y, w, h = (float(v) for v in inst["box"])
            track = inst.get("track_id")
            colour = _BOX if track is None else label_color(int(track) + 1)
            draw_box(canvas, (x, y, x + w, y + h), colour, thickness)
            caption = " ".join([*([f"#{track}"] if track is not None else []),
                                *([f"{inst['score']:.2f}"] if inst.get("score") is not None else [])])
            if caption:
                placer.place(caption, (x, y), colour)
        visible = kpts[:, 2] > kpt_thre
        points = [(int(round(px)), int(round(py))) for px, py in kpts[:, :2]]
        limbs = [(a, b) for a, b in meta.skeleton if visible[a] and visible[b]]
        for a, b in limbs:  # dark edges first, so that no edge covers a limb drawn before it
            cv2.line(canvas, points[a], points[b], EDGE_COLOR, thickness + 2, cv2.LINE_AA)
        for a, b in limbs:
            side_a, side_b = _side(meta.keypoints[a]), _side(meta.keypoints[b])
            cv2.line(canvas, points[a], points[b], side_a if side_a == side_b else _CENTRE, thickness, cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            cv2.circle(canvas, points[k], radius + 1, EDGE_COLOR, -1, cv2.LINE_AA)
            cv2.circle(canvas, points[k], radius, _side(meta.keypoints[k]), -1, cv2.LINE_AA)
        if show_scores:
            for k in np.flatnonzero(visible):
                anchor = (points[k][0] + radius + 1, points[k][1] - radius)
                score_placer.place(f"{kpts[k, 2]:.2f}", anchor, _side(meta.keypoints[k]))
    return canvas
