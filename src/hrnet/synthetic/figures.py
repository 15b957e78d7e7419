"""Articulated stick figures with the 17 COCO keypoints, for the synthetic pose dataset.

A figure faces the camera, so its left side is on the image's right, as for a real person seen from the
front. Its parts are thick capsules (limbs), a quadrilateral (torso) and a disc with eyes, nose and ears
(head); left limbs are painted in warm colours and right limbs in cool ones, hands and feet are darker
discs and elbows/knees carry a light dot, so every keypoint sits on a visible landmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .textures import hsv_colour, random_colour

#: the 17 COCO person keypoints, in COCO order
COCO_KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
#: the COCO person skeleton: pairs of 1-based keypoint indices, as in the COCO annotation files
COCO_SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip

K = {name: i for i, name in enumerate(COCO_KEYPOINT_NAMES)}

# Body proportions as fractions of the standing height (ankle to top of head).
_HEAD_RADIUS, _NECK, _TORSO = 0.07, 0.04, 0.30
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.17, 0.15, 0.24, 0.22
_SHOULDER_WIDTH, _HIP_WIDTH = 0.22, 0.14
_STANDING = _SHIN + _THIGH + _TORSO + _NECK + 2 * _HEAD_RADIUS
#: height of the hip centre above the ankles when standing, as a fraction of the figure height
PELVIS_HEIGHT = (_SHIN + _THIGH) / _STANDING

_SUBPIXEL_BITS = 4


@dataclass
class Figure:
    """One posed figure: its keypoints (17, 2) in pixels, its height in pixels and its paint."""

    keypoints: np.ndarray
    height: float
    hidden_ears: tuple[int, ...]
    skin: np.ndarray
    shirt: np.ndarray
    left_colour: np.ndarray
    right_colour: np.ndarray


def _rotate(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def sample_figure(rng: np.random.Generator, pelvis: tuple[float, float], height: float) -> Figure:
    """Pose a figure of the given standing ``height`` (pixels) with its hip centre at ``pelvis``.

    Joint angles are drawn from ranges a person can reach: arms from hanging to raised with the elbow
    bent up to 150 degrees, legs spread up to 40 degrees with the knee bent up to 90, the torso leaning
    up to about 15 degrees and the head turned a little.
    """
    unit = height / _STANDING * rng.uniform(0.93, 1.07, size=8)  # per-part proportion jitter
    tilt = float(np.clip(rng.normal(0.0, np.deg2rad(7.0)), -0.3, 0.3))
    up = np.array([np.sin(tilt), -np.cos(tilt)])
    right = np.array([np.cos(tilt), np.sin(tilt)])  # image right = the figure's left side
    down = -up
    kp = np.zeros((17, 2))
    root = np.asarray(pelvis, dtype=np.float64)
    neck_base = root + up * _TORSO * unit[0]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        kp[K[f"{side}_hip"]] = root + sign * right * _HIP_WIDTH / 2 * unit[1]
        kp[K[f"{side}_shoulder"]] = neck_base + sign * right * _SHOULDER_WIDTH / 2 * unit[1]

        raise_angle = np.deg2rad(rng.uniform(-15.0, 170.0))
        upper = np.cos(raise_angle) * down + np.sin(raise_angle) * sign * right
        forearm = _rotate(upper, rng.choice([-1.0, 1.0]) * np.deg2rad(rng.uniform(0.0, 150.0)))
        kp[K[f"{side}_elbow"]] = kp[K[f"{side}_shoulder"]] + upper * _UPPER_ARM * unit[2]
        kp[K[f"{side}_wrist"]] = kp[K[f"{side}_elbow"]] + forearm * _FOREARM * unit[3]

        spread = np.deg2rad(rng.uniform(-8.0, 40.0))
        thigh = np.cos(spread) * down + np.sin(spread) * sign * right
        shin = _rotate(thigh, rng.choice([-1.0, 1.0]) * np.deg2rad(rng.uniform(0.0, 90.0)))
        kp[K[f"{side}_knee"]] = kp[K[f"{side}_hip"]] + thigh * _THIGH * unit[4]
        kp[K[f"{side}_ankle"]] = kp[K[f"{side}_knee"]] + shin * _SHIN * unit[5]

    radius = _HEAD_RADIUS * unit[6]
    head = neck_base + up * (_NECK * unit[7] + radius)
    yaw = rng.uniform(-0.35, 0.35)  # the face turned towards the figure's left (> 0) or right (< 0)
    kp[K["nose"]] = head + right * yaw * radius + down * 0.2 * radius
    for side, sign in (("left", 1.0), ("right", -1.0)):
        kp[K[f"{side}_eye"]] = head + right * (yaw + sign * 0.42) * radius + up * 0.22 * radius
        kp[K[f"{side}_ear"]] = head + right * sign * 1.0 * radius
    # A head turned far enough hides the ear on the side it turns to.
    hidden_ears = (K["left_ear"],) if yaw > 0.25 else (K["right_ear"],) if yaw < -0.25 else ()
    return Figure(
        keypoints=kp,
        height=float(height),
        hidden_ears=hidden_ears,
        skin=random_colour(rng, hue=(15, 40), sat=(0.25, 0.6), val=(0.45, 0.95)),
        shirt=random_colour(rng, sat=(0.0, 0.5), val=(0.25, 0.9)),
        left_colour=hsv_colour(rng.uniform(-20, 45), rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0)),
        right_colour=hsv_colour(rng.uniform(170, 240), rng.uniform(0.7, 1.0), rng.uniform(0.6, 1.0)),
    )


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * (1 << _SUBPIXEL_BITS))), int(round(p[1] * (1 << _SUBPIXEL_BITS)))


def _line(canvas: np.ndarray, a: np.ndarray, b: np.ndarray, colour, thickness: float, line_type: int) -> None:
    cv2.line(canvas, _pt(a), _pt(b), colour, max(1, int(round(thickness))), line_type, _SUBPIXEL_BITS)


def _disc(canvas: np.ndarray, c: np.ndarray, radius: float, colour, line_type: int) -> None:
    r = max(int(round(radius * (1 << _SUBPIXEL_BITS))), 1 << _SUBPIXEL_BITS)
    cv2.circle(canvas, _pt(c), r, colour, -1, line_type, _SUBPIXEL_BITS)


def _darker(colour, factor: float) -> tuple[int, ...]:
    return tuple(int(v * factor) for v in colour)


def draw_figure(image: np.ndarray, owner: np.ndarray, figure: Figure, owner_id: int) -> None:
    """Paint ``figure`` into the RGB ``image`` and write ``owner_id`` into the ``owner`` map where it is seen.

    The owner map is drawn with the same primitives, without anti-aliasing, and later tells which
    keypoints another figure or an occluder hides.
    """
    _draw_parts(image, figure, None, cv2.LINE_AA)
    _draw_parts(owner, figure, owner_id, cv2.LINE_8)


def _draw_parts(canvas: np.ndarray, figure: Figure, label: int | None, line_type: int) -> None:
    """Draw the figure back to front: torso, legs, arms, joints, neck, ears, head, face."""
    kp = {name: figure.keypoints[i] for name, i in K.items()}
    h = figure.height

    def colour(c) -> tuple[int, ...] | int:
        return label if label is not None else tuple(int(v) for v in c)

    def line(a, b, c, thickness):
        _line(canvas, kp[a], kp[b], colour(c), thickness, line_type)

    def disc(centre, radius, c):
        _disc(canvas, centre, radius, colour(c), line_type)

    torso = np.stack([kp["left_shoulder"], kp["right_shoulder"], kp["right_hip"], kp["left_hip"]])
    torso = torso.mean(axis=0) + (torso - torso.mean(axis=0)) * 1.12
    cv2.fillPoly(canvas, [np.array([_pt(p) for p in torso], np.int32)], colour(figure.shirt), line_type, _SUBPIXEL_BITS)
    limb_colours = {"left": figure.left_colour, "right": figure.right_colour}
    for side, limb in limb_colours.items():
        line(f"{side}_hip", f"{side}_knee", limb, 0.075 * h)
        line(f"{side}_knee", f"{side}_ankle", _darker(limb, 0.8), 0.06 * h)
        disc(kp[f"{side}_ankle"], 0.035 * h, _darker(limb, 0.45))
    for side, limb in limb_colours.items():
        line(f"{side}_shoulder", f"{side}_elbow", limb, 0.055 * h)
        line(f"{side}_elbow", f"{side}_wrist", _darker(limb, 0.8), 0.045 * h)
        disc(kp[f"{side}_wrist"], 0.03 * h, _darker(limb, 0.45))
    for side in limb_colours:
        disc(kp[f"{side}_elbow"], 0.015 * h, (235, 235, 235))
        disc(kp[f"{side}_knee"], 0.015 * h, (235, 235, 235))
        disc(kp[f"{side}_shoulder"], 0.03 * h, _darker(figure.shirt, 0.7))
        disc(kp[f"{side}_hip"], 0.03 * h, _darker(figure.shirt, 0.7))
    head = (kp["left_ear"] + kp["right_ear"]) / 2
    radius = float(np.linalg.norm(kp["left_ear"] - kp["right_ear"])) / 2
    _line(
        canvas,
        (kp["left_shoulder"] + kp["right_shoulder"]) / 2,
        head,
        colour(figure.skin),
        0.9 * radius,
        line_type,
    )
    for ear in ("left_ear", "right_ear"):
        if K[ear] not in figure.hidden_ears:
            disc(kp[ear], 0.3 * radius, _darker(figure.skin, 0.7))
    disc(head, radius, figure.skin)
    for eye in ("left_eye", "right_eye"):
        disc(kp[eye], 0.2 * radius, (250, 250, 250))
        disc(kp[eye], 0.1 * radius, (20, 20, 20))
    disc(kp["nose"], 0.14 * radius, (200, 40, 40))
