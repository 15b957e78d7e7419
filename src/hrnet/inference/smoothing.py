"""One-Euro smoothing of keypoints over a video, per track id (Casiez et al., CHI 2012).

The One-Euro filter is a low-pass filter whose cut-off frequency rises with the speed of the signal:
a still joint is smoothed hard (no jitter), a fast one barely (no lag). ``min_cutoff`` (Hz) sets the
smoothing at rest, ``beta`` how quickly the cut-off follows the speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["OneEuroFilter", "KeypointSmoother"]


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuroFilter:
    """A One-Euro filter of an array signal (any shape, filtered element-wise), sampled at ``dt`` seconds."""

    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0
    _x: np.ndarray | None = None
    _dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray, dt: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        return self._x.copy()


class KeypointSmoother:
    """``smoother(ids, keypoints, frame)`` -> the keypoints ``(N, K, 3)`` with x, y filtered per track id.

    ``fps`` is the video's frame rate (the filter works in seconds, so its settings do not depend on it).
    A track unseen for more than ``max_gap`` frames starts afresh; scores are left as they are.
    """

    def __init__(self, fps: float = 25.0, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0,
                 max_gap: int = 10) -> None:
        self.fps, self.max_gap = fps, max_gap
        self.settings = {"min_cutoff": min_cutoff, "beta": beta, "d_cutoff": d_cutoff}
        self.filters: dict[int, tuple[OneEuroFilter, int]] = {}

    def __call__(self, ids: np.ndarray, keypoints: np.ndarray, frame: int) -> np.ndarray:
        keypoints = np.array(keypoints, dtype=np.float64, copy=True).reshape(len(ids), -1, 3)
        for i, track_id in enumerate(np.asarray(ids).tolist()):
            one_euro, last = self.filters.get(track_id, (None, frame))
            if one_euro is None or frame - last > self.max_gap:
                one_euro, last = OneEuroFilter(**self.settings), frame
            keypoints[i, :, :2] = one_euro(keypoints[i, :, :2], max(frame - last, 1) / self.fps)
            self.filters[track_id] = (one_euro, frame)
        stale = [k for k, (_, last) in self.filters.items() if frame - last > self.max_gap]
        for k in stale:
            del self.filters[k]
        return keypoints
