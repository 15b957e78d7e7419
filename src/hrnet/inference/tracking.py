"""Greedy frame-to-frame tracking: each pose (by OKS) or box (by IoU) gets the id of the track it matches.

A track remembers its last pose or box and its velocity (constant-velocity prediction, so that two
persons crossing each other are told apart by where each was heading). Every frame, the pairs (track,
detection) are taken best similarity first while both are free and the similarity reaches the
threshold; an unmatched detection starts a new track with a new id, and an unmatched track is kept for
``max_age`` frames before it is dropped, so a person hidden for a moment keeps its id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou

from ..tasks.pose.postprocess import COCO_SIGMAS, oks_iou

__all__ = ["Tracker", "box_from_keypoints"]


@dataclass
class _Track:
    track_id: int
    value: np.ndarray  # the last pose (K, 3) or box xyxy (4,)
    velocity: np.ndarray
    area: float
    last_seen: int


class Tracker:
    """``tracker.update(boxes, keypoints)`` -> the track id of each detection of the next frame.

    ``kind="pose"`` matches by OKS between the predicted poses of the tracks and the new poses (keypoints
    scoring above ``kpt_thre`` count; the OKS scale is the larger box area of the two), ``kind="box"`` by
    IoU of boxes. ``threshold`` is the least similarity of a match, ``max_age`` how many frames an unseen
    track is kept. Ids are 0, 1, 2, ... in order of appearance and never reused.
    """

    def __init__(self, kind: str = "pose", threshold: float = 0.3, max_age: int = 5, kpt_thre: float = 0.3,
                 sigmas: Sequence[float] | None = None) -> None:
        if kind not in ("pose", "box"):
            raise ValueError(f"tracker kind must be 'pose' or 'box', not {kind!r}")
        self.kind = kind
        self.threshold = threshold
        self.max_age = max_age
        self.kpt_thre = kpt_thre
        self.sigmas = COCO_SIGMAS if sigmas is None else np.asarray(sigmas, dtype=np.float64)
        self.tracks: list[_Track] = []
        self.frame = -1
        self._next_id = 0

    def reset(self) -> None:
        self.tracks, self.frame, self._next_id = [], -1, 0

    def update(self, boxes: np.ndarray, keypoints: np.ndarray | None = None) -> np.ndarray:
        """Ids for this frame's detections: ``boxes`` ``(N, 4)`` xywh and, for pose tracking, ``keypoints``
        ``(N, K, 3)`` (x, y, score)."""
        self.frame += 1
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        if self.kind == "pose":
            if keypoints is None:
                raise ValueError("pose tracking needs the keypoints of each detection")
            values = np.asarray(keypoints, dtype=np.float64).reshape(len(boxes), -1, 3)
        else:
            values = xyxy
        areas = boxes[:, 2] * boxes[:, 3]
        similarity = self._similarity(values, areas)
        ids = np.full(len(boxes), -1, dtype=np.int64)
        matched_tracks: set[int] = set()
        for flat in np.argsort(-similarity, axis=None, kind="stable"):
            t, d = divmod(int(flat), len(boxes))
            if similarity[t, d] < self.threshold:
                break
            if t in matched_tracks or ids[d] >= 0:
                continue
            track = self.tracks[t]
            gap = self.frame - track.last_seen
            track.velocity = (values[d] - track.value) / gap
            if self.kind == "pose":
                track.velocity[:, 2] = 0.0  # scores do not move
            else:  # the centre moves; a box's size changes with how it was found (detected or from a pose)
                track.velocity = np.tile((track.velocity[:2] + track.velocity[2:]) / 2, 2)
            track.value, track.area, track.last_seen = values[d], float(areas[d]), self.frame
            ids[d] = track.track_id
            matched_tracks.add(t)
        for d in np.flatnonzero(ids < 0):
            self.tracks.append(_Track(self._next_id, values[d], np.zeros_like(values[d]), float(areas[d]), self.frame))
            ids[d] = self._next_id
            self._next_id += 1
        self.tracks = [t for t in self.tracks if self.frame - t.last_seen <= self.max_age]
        return ids

    def _similarity(self, values: np.ndarray, areas: np.ndarray) -> np.ndarray:
        """(tracks, detections) similarity of each track's predicted value with each detection."""
        out = np.zeros((len(self.tracks), len(values)))
        if not len(self.tracks) or not len(values):
            return out
        predicted = np.stack([t.value + t.velocity * (self.frame - t.last_seen) for t in self.tracks])
        if self.kind == "box":
            return box_iou(torch.from_numpy(predicted), torch.from_numpy(values)).numpy()
        for i, (track, pose) in enumerate(zip(self.tracks, predicted, strict=True)):
            out[i] = _oks_over_seen(pose, values, np.maximum(track.area, areas), self.sigmas, self.kpt_thre)
        return out


def _oks_over_seen(pose: np.ndarray, poses: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
                   kpt_thre: float) -> np.ndarray:
    """OKS of ``pose`` ``(K, 3)`` with each of ``poses`` ``(M, K, 3)`` at scale ``areas`` ``(M,)``, over
    the keypoints both score above ``kpt_thre`` (0 where there are none)."""
    both = (pose[None, :, 2] > kpt_thre) & (poses[..., 2] > kpt_thre)
    d = np.concatenate([poses[..., :2], both[..., None].astype(np.float64)], axis=2).reshape(len(poses), -1)
    # oks_iou's scale is (a_g + a_d) / 2 per pair: a_g = 0, a_d = 2 x the pair's area gives the pair's area
    return oks_iou(pose.reshape(-1), d, 0.0, 2 * areas, sigmas, in_vis_thre=0.5)


def box_from_keypoints(keypoints: np.ndarray, kpt_thre: float = 0.3, enlarge: float = 1.25,
                       min_keypoints: int = 3) -> np.ndarray | None:
    """The xywh box of the keypoints scoring above ``kpt_thre``, grown ``enlarge`` times about its centre
    (a pose's keypoints stop short of the head's top and the feet, which a person box includes); None
    when fewer than ``min_keypoints`` pass."""
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    seen = keypoints[keypoints[:, 2] > kpt_thre, :2]
    if len(seen) < min_keypoints:
        return None
    low, high = seen.min(axis=0), seen.max(axis=0)
    centre, size = (low + high) / 2, (high - low) * enlarge
    return np.array([centre[0] - size[0] / 2, centre[1] - size[1] / 2, size[0], size[1]])
