"""Pose estimation on video: detect every N frames, carry the boxes by the poses in between, batch the crops
of all persons (of several frames) through the pose model, track, smooth, draw.

:class:`PoseVideoPipeline` takes plain callables, so any person detector and any pose predictor plug in:
``detector(frame) -> (xywh boxes, scores)`` and the top-down predictor
(:class:`~hrnet.tasks.pose.inference.TopDownPredictor`: ``predictor(images, boxes, scores)`` -> per image
its instances), whose crop and heatmap-decoding code it reuses. On a frame without detection, each
person's box is the box of its previous pose's confident keypoints, enlarged (the person moved at most a
little since); a person whose pose has too few confident keypoints is dropped until the next detection.
When no person is left, the detector runs on the next frame whatever N is.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np

from ..tasks.pose.inference import Detector, TopDownPredictor
from ..tasks.pose.meta import KeypointMeta
from .results import PoseResult
from .smoothing import KeypointSmoother
from .tracking import Tracker, box_from_keypoints

__all__ = ["StageTimer", "PoseVideoPipeline"]


class StageTimer:
    """Wall-clock seconds spent in each named stage: ``with timer("detect"): ...``; ``timer.seconds``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def shares(self) -> dict[str, float]:
        """Each stage's share of the time in all stages."""
        total = sum(self.seconds.values()) or 1.0
        return {stage: s / total for stage, s in self.seconds.items()}


class PoseVideoPipeline:
    """``pipeline(frames)`` -> one :class:`~hrnet.inference.results.PoseResult` per frame, frames given in
    video order over successive calls (``reset()`` before another video).

    - ``detector`` runs on every ``detect_every``-th frame (1: every frame); in between, boxes come from the
      previous poses (:func:`~hrnet.inference.tracking.box_from_keypoints` with ``box_enlarge``, keypoints
      scoring above ``kpt_thre``, at least ``min_keypoints`` of them). Detections below ``box_thre`` are
      dropped, and at most ``max_persons`` (the best-scoring) are kept.
    - All persons of all frames of one call go through ``predictor`` together (its ``batch_size`` crops per
      forward pass). Within a call, a frame without detection takes the latest boxes known when the call
      starts or found by a detection earlier in the call: one frame per call follows the poses exactly,
      more frames per call fill the batches better.
    - ``tracker`` (a :class:`~hrnet.inference.tracking.Tracker`) gives each person a ``track_id``,
      ``smoother`` (a :class:`~hrnet.inference.smoothing.KeypointSmoother`, needs the tracker) smooths
      each track's keypoints.
    - ``timer`` (a :class:`StageTimer`) is charged with "detect", "crop", "pose", "decode", "track" and
      "draw" (the predictor's stages through its ``stage`` hook).
    """

    def __init__(self, predictor: TopDownPredictor, meta: KeypointMeta, detector: Detector | None = None, *,
                 detect_every: int = 1, box_enlarge: float = 1.25, kpt_thre: float = 0.3, min_keypoints: int = 4,
                 box_thre: float = 0.0, max_persons: int | None = None, tracker: Tracker | None = None,
                 smoother: KeypointSmoother | None = None, timer: StageTimer | None = None,
                 draw_kpt_thre: float = 0.2, source: str | None = None) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {detect_every}")
        if smoother is not None and tracker is None:
            raise ValueError("keypoint smoothing follows each person by its track id: give a tracker too")
        self.predictor, self.meta, self.detector = predictor, meta, detector
        self.detect_every, self.box_enlarge, self.kpt_thre = detect_every, box_enlarge, kpt_thre
        self.min_keypoints, self.box_thre, self.max_persons = min_keypoints, box_thre, max_persons
        self.tracker, self.smoother = tracker, smoother
        self.timer = timer
        self.draw_kpt_thre, self.source = draw_kpt_thre, source
        if timer is not None:
            predictor.stage = timer
        self.reset()

    def reset(self) -> None:
        self.frame = 0
        self._carried: tuple[np.ndarray, np.ndarray] | None = None
        if self.tracker is not None:
            self.tracker.reset()
        if self.smoother is not None:
            self.smoother.filters.clear()

    def _stage(self, name: str) -> Any:
        return self.timer(name) if self.timer is not None else nullcontext()

    def __call__(self, frames: Sequence[np.ndarray]) -> list[PoseResult]:
        boxes, scores = [], []
        for frame in frames:
            b, s = self._persons(frame, self.frame + len(boxes))
            boxes.append(b)
            scores.append(s)
        instances = self.predictor(list(frames), boxes, scores) if frames else []
        results = []
        for frame, found in zip(frames, instances, strict=True):
            results.append(self._result(frame, found))
            self.frame += 1
        if results:
            self._carry(instances[-1])
        return results

    def _persons(self, frame: np.ndarray, index: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The boxes and scores of one frame: detected, or the latest carried ones."""
        carried = self._carried
        if self.detector is None:
            return (None, None) if carried is None else carried  # the whole frame until poses give boxes
        if carried is None or not len(carried[0]) or index % self.detect_every == 0:
            with self._stage("detect"):
                boxes, scores = self.detector(frame)
            boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
            scores = np.asarray(scores, dtype=np.float64).reshape(-1)
            keep = np.flatnonzero(scores >= self.box_thre)
            keep = keep[np.argsort(-scores[keep], kind="stable")][: self.max_persons]
            self._carried = boxes[keep], scores[keep]
        return self._carried

    def _carry(self, instances: list[dict[str, Any]]) -> None:
        """The boxes of the next frames: each pose's confident keypoints, enlarged, with its box score."""
        boxes, scores = [], []
        for inst in instances:
            box = box_from_keypoints(inst["keypoints"], self.kpt_thre, self.box_enlarge, self.min_keypoints)
            if box is not None:
                boxes.append(box)
                scores.append(inst["box_score"])
        self._carried = np.array(boxes).reshape(-1, 4), np.array(scores, dtype=np.float64)

    def _result(self, frame: np.ndarray, instances: list[dict[str, Any]]) -> PoseResult:
        h, w = frame.shape[:2]
        result = PoseResult.from_instances(instances, self.meta, kpt_thre=self.draw_kpt_thre, image_id=self.frame,
                                           height=h, width=w, file=self.source, frame=self.frame)
        if self.tracker is not None:
            with self._stage("track"):
                xywh = result.boxes.copy()
                xywh[:, 2:] -= xywh[:, :2]
                result.track_ids = self.tracker.update(xywh, result.keypoints)
                if self.smoother is not None and len(result.keypoints):
                    result.keypoints = self.smoother(result.track_ids, result.keypoints, self.frame)
        return result

    def step(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, dict[str, Any]]]:
        """:func:`~hrnet.inference.video.process_video`'s per-frame step: the frames drawn and their records."""
        results = self(frames)
        with self._stage("draw"):
            return [(result.draw(frame), result.to_json()) for frame, result in zip(frames, results, strict=True)]

