"""Synthetic videos of stick figures that move, change pose and cross each other, with the truth per frame.

:func:`moving_people` is the test bed of video pose estimation: tracking (each person's identity is
known), detecting every N frames (the true boxes are known) and the end-to-end speed benchmark. Persons
walk to and fro across a fixed background, so their paths cross and the nearer (taller) figure hides
the other; each one's limbs swing between two poses drawn from the figure generator, so its
keypoints move relative to its body as well as with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .figures import PELVIS_HEIGHT, Figure, draw_figure, sample_figure
from .generate import _keypoint_triplets, _scatter_clutter
from .textures import background, finish

__all__ = ["PersonTruth", "SyntheticVideo", "moving_people"]


@dataclass(frozen=True)
class PersonTruth:
    """One person in one frame: its identity (``track_id``), its keypoints ``(17, 3)`` as COCO triplets (v=2 seen,
    v=1 hidden by another figure, v=0 outside the frame), its box xywh around all its keypoints in the
    frame and its area in pixels (the OKS scale)."""

    track_id: int
    keypoints: np.ndarray
    box: np.ndarray
    area: float


@dataclass
class SyntheticVideo:
    """RGB frames ``(H, W, 3)`` uint8 and, per frame, the persons in it (ids are 0, 1, ...)."""

    frames: list[np.ndarray]
    truth: list[list[PersonTruth]]
    fps: float = 25.0

    def __len__(self) -> int:
        return len(self.frames)


def moving_people(
    num_frames: int = 60,
    size: tuple[int, int] = (256, 384),
    num_people: int = 3,
    seed: int = 0,
    speed: float = 0.012,
    fps: float = 25.0,
) -> SyntheticVideo:
    """A video of ``num_frames`` frames of ``size`` (height, width) with ``num_people`` walking figures.

    Each figure walks to and fro across the frame at ``speed`` (a fraction of the width per frame,
    jittered per person), turning back at the sides, neighbours starting in opposite directions so that
    paths cross; its limbs swing between two poses with a period of 1-2 s. Figures stay in view (a
    raised hand or a wide step may leave it). Deterministic for a ``seed``.
    """
    if num_frames < 1 or num_people < 1:
        raise ValueError(f"need at least one frame and one person, got {num_frames} frames, {num_people} persons")
    h, w = size
    rng = np.random.default_rng([seed, 5])
    scene = background(rng, h, w)
    _scatter_clutter(rng, scene)
    people = []
    for p in range(num_people):
        height = rng.uniform(0.55, 0.85) * h
        direction = 1.0 if p % 2 == 0 else -1.0
        start = (p + 0.5) / num_people * w
        feet = h - rng.uniform(0.04, 0.12) * h
        pelvis = (0.0, feet - PELVIS_HEIGHT * height)
        a, b = sample_figure(rng, pelvis, height), sample_figure(rng, pelvis, height)
        people.append({
            "figures": (a, replace(b, skin=a.skin, shirt=a.shirt, left_colour=a.left_colour,
                                   right_colour=a.right_colour, hidden_ears=a.hidden_ears)),
            "start": start, "velocity": direction * speed * w * rng.uniform(0.8, 1.2),
            "period": rng.uniform(1.0, 2.0) * fps, "phase": rng.uniform(0, 2 * np.pi), "height": height,
        })  # fmt: skip
    order = np.argsort([p["height"] for p in people])  # far (short) figures first, near ones over them
    frames, truth = [], []
    for t in range(num_frames):
        image = scene.copy()
        owner = np.zeros((h, w), dtype=np.uint8)
        posed = {}
        for index in order:
            person = people[index]
            figure = _figure_at(person, t, w)
            posed[index] = figure
            draw_figure(image, owner, figure, int(index) + 1)
        frame_truth = []
        for index in range(num_people):
            figure = posed[index]
            keypoints = _keypoint_triplets(figure.keypoints, owner, index + 1, figure.hidden_ears)
            inside = keypoints[:, 2] > 0
            if inside.sum() < 3:
                continue
            box = _keypoint_box(figure.keypoints, figure.height, w, h)
            frame_truth.append(PersonTruth(index, keypoints, box, float(box[2] * box[3])))
        frames.append(finish(np.random.default_rng([seed, 6, t]), image))
        truth.append(frame_truth)
    return SyntheticVideo(frames, truth, fps)


def _figure_at(person: dict, t: int, width: int) -> Figure:
    """The person's figure in frame ``t``: its pose blended between its two poses, at its place on its path
    (to and fro between the frame's sides, turning back where its body would leave the frame)."""
    a, b = person["figures"]
    blend = 0.5 - 0.5 * np.cos(2 * np.pi * t / person["period"] + person["phase"])
    keypoints = (1 - blend) * a.keypoints + blend * b.keypoints
    low, high = 0.3 * person["height"], width - 0.3 * person["height"]
    travel = (person["start"] - low + person["velocity"] * t) % (2 * (high - low))
    x = low + (travel if travel <= high - low else 2 * (high - low) - travel)
    return replace(a, keypoints=keypoints + np.array([x, 0.0]))


def _keypoint_box(points: np.ndarray, height: float, width: int, image_height: int) -> np.ndarray:
    """The box xywh of a figure as a person detector would draw it: its keypoints' extent grown by the head
    above the eyes and the feet below the ankles, clipped to the frame."""
    margin = 0.06 * height
    x0, y0 = points.min(axis=0) - margin
    x1, y1 = points.max(axis=0) + margin
    x0, y0 = max(x0, 0.0), max(y0, 0.0)
    x1, y1 = min(x1, width - 1.0), min(y1, image_height - 1.0)
    return np.array([x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)])
