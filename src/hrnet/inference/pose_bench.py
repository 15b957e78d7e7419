"""The end-to-end pose video benchmark (``hrnet bench --pipeline video``): decode -> detect -> crop -> pose ->
decode heatmaps -> draw, timed stage by stage on a synthetic multi-person video, for a reference pipeline
written the way the official demo works and for ours, in one run, with the agreement of their poses.

- **reference**: frames read one after the other, the detector on every frame, each person cropped and
  run alone (batch 1) through the eager fp32 model, its heatmaps decoded, the poses drawn;
- **ours**: frames decoded in a background thread (:mod:`hrnet.inference.video`), the model in a deploy
  path, all persons of a frame in one batch (:class:`~hrnet.tasks.pose.inference.TopDownPredictor`), and
  optionally the detector every N frames with boxes carried by the poses and tracking
  (:class:`~hrnet.inference.pose_video.PoseVideoPipeline`).

The pipelines take turns of a few frames each (:func:`interleave`), each charged with its own turns'
time, so a change of the machine's load during the run affects them alike. Both use the same detector,
the config's codec, no flip test (the demo has none). Agreement is the
mean OKS of the reference's persons with their best match among the other pipeline's poses (greedy,
one to one; an unmatched person counts 0), all keypoints, COCO sigmas, the area of the reference box.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..deploy.bench import machine_info
from ..synthetic.video import SyntheticVideo
from ..tasks.pose.codecs import HeatmapCodec
from ..tasks.pose.inference import TopDownPredictor
from ..tasks.pose.meta import KeypointMeta
from ..tasks.pose.postprocess import COCO_SIGMAS, oks_iou
from ..tasks.pose.transforms import to_input_tensor
from ..tasks.pose.visualize import draw_poses
from .pose_video import PoseVideoPipeline, StageTimer
from .tracking import Tracker
from .video import VideoWriter, open_frames

__all__ = ["TruthDetector", "PipelineRun", "VideoBenchReport", "reference_frames", "pipeline_frames", "interleave",
           "pose_agreement", "write_video", "truth_crops", "run_video_benchmark", "STAGES"]

#: the stages timed, and their names in the report ("decode" is the heatmaps', "read" the video's)
STAGES = {"read": "video decode", "detect": "detect", "crop": "crop", "pose": "pose", "decode": "heatmap decode",
          "track": "track", "draw": "draw"}
Poses = list[tuple[np.ndarray, float]]  # per frame: (keypoints (K, 3), box area) of each person


class TruthDetector:
    """A person detector that knows the answer: the true boxes of each frame of a synthetic video, found
    by the frame's pixels (frames decoded from the same file are the same bytes). ``cost``, a real
    detector, is run on the frame first so that detection takes a real detector's time."""

    def __init__(self, frames: Sequence[np.ndarray], boxes: Sequence[np.ndarray],
                 cost: Callable[[np.ndarray], Any] | None = None) -> None:
        self.table = {self._key(f): np.asarray(b, dtype=np.float64).reshape(-1, 4)
                      for f, b in zip(frames, boxes, strict=True)}
        self.cost = cost

    @staticmethod
    def _key(frame: np.ndarray) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest()

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.cost is not None:
            self.cost(frame)
        boxes = self.table.get(self._key(frame))
        if boxes is None:
            raise KeyError("TruthDetector: a frame that is not one of the video's")
        return boxes.copy(), np.ones(len(boxes))


def torchvision_cost(name: str) -> nn.Module:
    """A torchvision COCO detector with random weights, run for its time only (untrained, it finds nothing)."""
    from torchvision.models import get_model

    torch.manual_seed(0)
    return get_model(name, weights=None, weights_backbone=None).eval()


@dataclass
class PipelineRun:
    """One pipeline's run over the video: frames, seconds, seconds per stage, poses per frame."""

    name: str
    frames: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    poses: list[Poses] = field(default_factory=list)
    oks: float | None = None
    detections: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def write_video(video: SyntheticVideo, path: str | os.PathLike) -> Path:
    """The frames of ``video`` as an MP4 at its frame rate."""
    with VideoWriter(path, video.fps) as writer:
        for frame in video.frames:
            writer.write(frame)
    return Path(path)


def reference_frames(run: PipelineRun, path: Path, model: nn.Module, codec: HeatmapCodec, meta: KeypointMeta,
                     detector: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                     padding: float = 1.25) -> Iterator[None]:
    """The official demo's loop, one frame per step: read a frame, detect, crop and run each person alone
    through ``model`` (eager fp32, batch 1), decode its heatmaps, draw. Fills ``run``."""
    import cv2

    timer = StageTimer()
    run.stages = timer.seconds
    capture = cv2.VideoCapture(str(path))
    model = model.eval()
    try:
        while True:
            with timer("read"):
                ok, bgr = capture.read()
                if not ok:
                    return
                frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            with timer("detect"):
                boxes, _ = detector(frame)
            instances = []
            for box in boxes:
                with timer("crop"):
                    center, scale = codec.box_to_center_scale(box, padding)
                    crop = to_input_tensor(codec.warp(frame, center, scale))[None]
                with timer("pose"), torch.inference_mode():
                    heatmaps = model(crop)
                with timer("decode"):
                    preds, maxvals = codec.decode(heatmaps.float(), center[None], scale[None])
                keypoints = np.concatenate([preds[0], maxvals[0].reshape(-1, 1)], axis=1)
                instances.append({"keypoints": keypoints, "box": list(box), "area": float(box[2] * box[3])})
            with timer("draw"):
                draw_poses(frame, instances, meta, show_scores=False)
            run.poses.append([(inst["keypoints"], inst["area"]) for inst in instances])
            run.detections += 1
            run.frames += 1
            yield
    finally:
        capture.release()


def pipeline_frames(run: PipelineRun, path: Path, predictor: TopDownPredictor, meta: KeypointMeta,
                    detector: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], detect_every: int = 1,
                    track: bool = False, frames_per_step: int = 1) -> Iterator[None]:
    """Our pipeline, ``frames_per_step`` frames per step: frames decoded ahead in a thread (one frame
    ahead, so that it takes little time from the other pipelines timed between its steps), batched crops,
    detection every ``detect_every`` frames, tracking when ``track``, the poses drawn. Fills ``run``."""
    timer = StageTimer()
    run.stages = timer.seconds
    counted = _Counted(detector)
    pipeline = PoseVideoPipeline(predictor, meta, counted, detect_every=detect_every,
                                 tracker=Tracker("pose") if track else None, timer=timer)
    with open_frames(path, queue_size=1) as source:
        frames = iter(source)
        while True:
            with timer("read"):
                batch = [frame for _, frame in zip(range(frames_per_step), frames, strict=False)]
            if not batch:
                return
            results = pipeline(batch)
            with timer("draw"):
                for frame, result in zip(batch, results, strict=True):
                    result.draw(frame, show_scores=False)
            run.poses.extend([(k, float(b[2] - b[0]) * float(b[3] - b[1]))
                              for k, b in zip(r.keypoints, r.boxes, strict=True)] for r in results)
            run.frames += len(batch)
            run.detections = counted.calls
            yield


def interleave(steps: Sequence[Iterator[None]], runs: Sequence[PipelineRun], frames: int = 4) -> None:
    """Advance the pipelines in turn, about ``frames`` frames each, until all are done, adding the time
    of each turn to its run: a change of the machine's load while they run affects all alike."""
    active = list(zip(steps, runs, strict=True))
    while active:
        for entry in list(active):
            step, run = entry
            start, first = time.perf_counter(), run.frames
            try:
                while run.frames - first < frames:
                    next(step)
            except StopIteration:
                active.remove(entry)
            run.seconds += time.perf_counter() - start


class _Counted:
    def __init__(self, detector: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> None:
        self.detector, self.calls = detector, 0

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        return self.detector(frame)


def pose_agreement(reference: Sequence[Poses], other: Sequence[Poses],
                   sigmas: Sequence[float] | None = None) -> float:
    """Mean OKS of each reference person with its match in ``other`` (see the module docstring)."""
    sigmas = COCO_SIGMAS if sigmas is None else np.asarray(sigmas)
    total, count = 0.0, 0
    for ref, cand in zip(reference, other, strict=True):
        count += len(ref)
        if not ref or not cand:
            continue
        cand_flat = np.stack([k.reshape(-1) for k, _ in cand])
        oks = np.stack([oks_iou(k.reshape(-1), cand_flat, area, np.full(len(cand), area), sigmas)
                        for k, area in ref])
        used_r, used_c = set(), set()
        for flat in np.argsort(-oks, axis=None, kind="stable"):
            r, c = divmod(int(flat), len(cand))
            if r in used_r or c in used_c:
                continue
            used_r.add(r)
            used_c.add(c)
            total += float(oks[r, c])
    return total / count if count else float("nan")


@dataclass
class VideoBenchReport:
    model: str
    video: str
    detector: str
    threads: int
    machine: dict[str, Any]
    runs: list[PipelineRun]

    def markdown(self) -> str:
        m, ref = self.machine, self.runs[0]
        lines = [
            f"**{self.model}**, {self.video}; detector: {self.detector}; {m['cpu']} ({m['cores']} cores), "
            f"{self.threads} threads, torch {m['torch']}, {m['date']}; load average {m['load_before']:.2f} before, "
            f"{m['load_after']:.2f} after.",
            "",
            "| pipeline | frames/s | speed-up | OKS vs reference | persons per frame | detector runs | "
            + " | ".join(f"{label} %" for label in STAGES.values()) + " | other % |",
            "|---|---|---|---|---|---|" + "---|" * (len(STAGES) + 1),
        ]
        for run in self.runs:
            total = run.seconds or 1.0
            other = max(0.0, total - sum(run.stages.values()))
            shares = " | ".join(f"{100 * run.stages.get(s, 0.0) / total:.1f}" for s in STAGES)
            shares += f" | {100 * other / total:.1f}"
            oks = "reference" if run is ref else f"{run.oks:.4f}"
            persons = sum(len(p) for p in run.poses) / max(run.frames, 1)
            lines.append(f"| {run.name} | {run.fps:.2f} | {run.fps / ref.fps:.2f}× | {oks} | {persons:.2f} | "
                         f"{run.detections} | "
                         f"{shares} |")
        return "\n".join(lines)


def truth_crops(frames: Sequence[np.ndarray], boxes: Sequence[np.ndarray], codec: HeatmapCodec, count: int = 32,
                batch_size: int = 8, padding: float = 1.25) -> list[torch.Tensor]:
    """Network inputs of up to ``count`` true person boxes spread over the video: int8 calibration data."""
    jobs = [(f, b) for f, bs in zip(frames, boxes, strict=True) for b in bs]
    picks = np.linspace(0, len(jobs) - 1, min(count, len(jobs))).round().astype(int)
    crops = []
    for i in picks:
        frame, box = jobs[i]
        center, scale = codec.box_to_center_scale(box, padding)
        crops.append(to_input_tensor(codec.warp(frame, center, scale)))
    return [torch.stack(crops[i:i + batch_size]) for i in range(0, len(crops), batch_size)]


def run_video_benchmark(model: nn.Module, codec: HeatmapCodec, meta: KeypointMeta, video: SyntheticVideo,
                        pipelines: Sequence[dict[str, Any]], detector_cost: str | None = None,
                        detector_path: str = "eager", model_name: str = "pose", threads: int | None = None,
                        turn_frames: int = 4,
                        log: Callable[[str], None] = print) -> VideoBenchReport:
    """Time the reference and each of ``pipelines`` (dicts: ``name``, ``path`` (a deploy path),
    ``detect_every``, ``track``, ``frames_per_step``) on ``video`` in this process, taking turns of
    ``turn_frames`` frames (:func:`interleave`).
    ``detector_cost`` names a torchvision detector (random weights) run on each detected frame for its
    time, eager in the reference and in ``detector_path`` (:func:`~hrnet.inference.deployed.deploy_person_detector`)
    in ours; the boxes are the video's true ones. int8 paths calibrate on crops of the true boxes."""
    from ..tasks.detection.person import PersonDetector
    from .deployed import DeployedModule, deploy_person_detector

    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="hrnet-video-bench-") as tmp:
        path = write_video(video, Path(tmp) / "people.mp4")
        with open_frames(path) as source:
            decoded = list(source)
        if len(decoded) != len(video):
            raise RuntimeError(f"wrote {len(video)} frames but read back {len(decoded)}")
        boxes = [np.stack([p.box for p in t]) if t else np.zeros((0, 4)) for t in video.truth]
        cost = PersonDetector(torchvision_cost(detector_cost), score_threshold=0.0) if detector_cost else None
        detector = TruthDetector(decoded, boxes, cost)
        ours = TruthDetector(decoded, boxes, deploy_person_detector(cost, detector_path) if cost else None)
        for warm_up in (detector, ours):  # the ONNX export (once per frame size) and first-call set-up, untimed
            warm_up(decoded[0])
        calibration = truth_crops(decoded, boxes, codec)
        runs = [PipelineRun("reference (detector every frame, eager fp32, one person at a time)")]
        steps = [reference_frames(runs[0], path, model, codec, meta, detector)]
        for spec in pipelines:
            deployed = DeployedModule(model, spec["path"], lambda shape: calibration, artifacts=Path(tmp) / "onnx")
            predictor = TopDownPredictor(deployed, codec, meta, flip_test=False, batch_size=64,
                                         nms=spec.get("track", False))
            log(f"{spec['name']}: building the {spec['path']} model ...")
            predictor([decoded[0]], [boxes[0]])  # exports / compiles / quantizes before the timing
            runs.append(PipelineRun(spec["name"]))
            steps.append(pipeline_frames(runs[-1], path, predictor, meta, ours, spec.get("detect_every", 1),
                                         spec.get("track", False), spec.get("frames_per_step", 1)))
        log(f"timing {len(runs)} pipelines in turns of {turn_frames} frames ...")
        interleave(steps, runs, turn_frames)
        for run in runs[1:]:
            run.oks = pose_agreement(runs[0].poses, run.poses)
        for run in runs:
            oks = "" if run.oks is None else f", OKS vs reference {run.oks:.4f}"
            log(f"  {run.name}: {run.fps:.2f} frames/s, {run.fps / runs[0].fps:.2f}x{oks}")
    info["load_after"] = os.getloadavg()[0]
    h, w = video.frames[0].shape[:2]
    persons = np.mean([len(t) for t in video.truth])
    detector_name = "the true boxes" + (f" after running {detector_cost} (random weights) on the frame for its "
                                        f"time (ours: {detector_path})" if detector_cost else "")
    return VideoBenchReport(model_name, f"{len(video)} frames of {w}×{h} with {persons:.1f} persons per frame",
                            detector_name, threads, info, runs)
