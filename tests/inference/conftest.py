"""Stand-ins of known behaviour for the video tests (a camera, a pose step that knows the truth) and tiny
models of the four tasks saved as configs + weights (``tiny``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from inference_testutils import SETUPS

from hrnet.data import synthesize
from hrnet.engine.build import build_task
from hrnet.engine.checkpoint import save_checkpoint
from hrnet.engine.config import load_config
from hrnet.synthetic.video import SyntheticVideo, moving_people


class FakeCapture:
    """A ``cv2.VideoCapture`` stand-in: ``count`` BGR frames of ``size``, frame i filled with value i."""

    def __init__(self, count: int = 5, size: tuple[int, int] = (24, 32), opened: bool = True, fps: float = 30.0):
        self.count, self.size, self.opened, self.fps = count, size, opened, fps
        self.reads, self.released = 0, False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def read(self):
        if self.reads >= self.count:
            return False, None
        self.reads += 1
        return True, np.full((*self.size, 3), self.reads - 1, np.uint8)

    def get(self, prop: int) -> float:
        import cv2

        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.released = True


class TruthPoses:
    """A top-down pose step that knows the truth, in the predictor's calling convention: for each box the
    true person it overlaps most (IoU), with the keypoints that fall inside the box's crop region (the box
    grown by ``padding``) scored 0.9 and the others 0 — so a box that has drifted off its person loses
    keypoints, as a model's crop would. Two crops on one person give one pose (the better-placed crop's),
    as the predictor's OKS-NMS leaves."""

    def __init__(self, video: SyntheticVideo, padding: float = 1.25) -> None:
        self.truth = {id(frame): persons for frame, persons in zip(video.frames, video.truth, strict=True)}
        self.padding = padding
        self.calls = 0

    def __call__(self, images, boxes, scores=None):
        self.calls += 1
        out = []
        for i, image in enumerate(images):
            persons = self.truth[id(image)]
            frame_boxes = np.zeros((0, 4)) if boxes[i] is None else np.asarray(boxes[i]).reshape(-1, 4)
            frame_scores = np.ones(len(frame_boxes)) if scores is None or scores[i] is None else scores[i]
            instances, taken = [], {}
            for box, score in zip(frame_boxes, frame_scores, strict=True):
                best = max(persons, key=lambda p: _iou(p.box, box), default=None)
                if best is None or _iou(best.box, box) <= 0:
                    continue
                if best.track_id in taken:  # two crops on one person: one pose, as OKS-NMS leaves
                    if taken[best.track_id][0] >= _iou(best.box, box):
                        continue
                    instances = [inst for inst in instances if inst is not taken[best.track_id][1]]
                centre, half = box[:2] + box[2:] / 2, box[2:] * self.padding / 2
                inside = np.all(np.abs(best.keypoints[:, :2] - centre) <= half, axis=1) & (best.keypoints[:, 2] > 0)
                keypoints = best.keypoints.astype(np.float64).copy()
                keypoints[:, 2] = np.where(inside, 0.9, 0.0)
                instances.append({"keypoints": keypoints, "box": [float(v) for v in box], "box_score": float(score),
                                  "score": float(score), "area": float(box[2] * box[3])})
                taken[best.track_id] = (_iou(best.box, box), instances[-1])
            out.append(instances)
        return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _truth_detector(video: SyntheticVideo):
    """``frame -> (true boxes, ones)`` for the frames of ``video`` (found by identity)."""
    table = {id(f): np.stack([p.box for p in t]) if t else np.zeros((0, 4))
             for f, t in zip(video.frames, video.truth, strict=True)}

    def detect(frame):
        boxes = table[id(frame)]
        return boxes.copy(), np.ones(len(boxes))

    return detect


def _id_accuracy(pairs: list[tuple[int, int]]) -> float:
    """Share of (true id, predicted id) person-frames whose ids correspond one to one: the predicted id is
    the one the true person has most often, and the true person is the one that predicted id has most often."""
    from collections import Counter

    by_truth: dict[int, Counter] = {}
    by_pred: dict[int, Counter] = {}
    for t, p in pairs:
        by_truth.setdefault(t, Counter())[p] += 1
        by_pred.setdefault(p, Counter())[t] += 1
    major_t = {t: c.most_common(1)[0][0] for t, c in by_truth.items()}
    major_p = {p: c.most_common(1)[0][0] for p, c in by_pred.items()}
    return float(np.mean([major_t[t] == p and major_p[p] == t for t, p in pairs]))


@pytest.fixture(scope="session")
def crossing_video() -> SyntheticVideo:
    """80 small frames of 4 persons walking both ways, crossing each other."""
    return moving_people(80, size=(128, 192), num_people=4, seed=1, speed=0.02)


# the helpers as fixtures (test modules here are not a package, so they cannot import this file)


@pytest.fixture(scope="session")
def fake_capture() -> type[FakeCapture]:
    return FakeCapture


@pytest.fixture(scope="session")
def truth_poses() -> type[TruthPoses]:
    return TruthPoses


@pytest.fixture(scope="session")
def truth_detector():
    return _truth_detector


@pytest.fixture(scope="session")
def id_accuracy():
    return _id_accuracy


@pytest.fixture(autouse=True)
def _one_thread_and_own_cache(single_torch_thread, tmp_path_factory, monkeypatch):
    """One torch thread; deployed models (ONNX files) cached in a folder of the test session."""
    monkeypatch.setenv("HRNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "hrnet_cache"))
    yield


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """``tiny(task) -> (config, weights, data root)``: a randomly initialised tiny model of ``task``."""
    made: dict[str, tuple[Path, Path, Path]] = {}

    def make(task: str) -> tuple[Path, Path, Path]:
        if task not in made:
            kind, size, raw = SETUPS[task]
            folder = tmp_path_factory.mktemp(task)
            count = 8 if kind == "cls" else 4  # one image per class at least
            root = synthesize(kind, folder / "data", num_train=count, num_val=count // 2 if kind != "cls" else 8,
                              image_size=size)
            raw = {**raw, "data": {**raw["data"], "root": str(root)}, "output_dir": str(folder / "run"),
                   "device": "cpu"}
            config = folder / f"{task}.yaml"
            config.write_text(yaml.safe_dump(raw))
            torch.manual_seed(0)
            weights = folder / "weights.pt"
            save_checkpoint(weights, {"model": build_task(load_config(config)).build_model().state_dict()})
            made[task] = config, weights, root
        return made[task]

    return make
