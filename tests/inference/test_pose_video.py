"""The pose video pipeline: detect every N frames with boxes carried by the poses, tracking, smoothing, and
a tiny model end to end. The pose step that knows the truth keeps a crop's keypoints only where the crop
covers them, so these tests measure how well carried boxes keep each person in its crop and how well the
tracker keeps identities, not a model's accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hrnet.inference.pose_bench import pose_agreement, run_video_benchmark
from hrnet.inference.pose_video import PoseVideoPipeline, StageTimer
from hrnet.inference.smoothing import KeypointSmoother
from hrnet.inference.tracking import Tracker
from hrnet.inference.video import open_frames, process_video
from hrnet.models.registry import build_model
from hrnet.synthetic.video import moving_people
from hrnet.tasks.pose.codecs import MSRAHeatmap
from hrnet.tasks.pose.inference import TopDownPredictor
from hrnet.tasks.pose.meta import COCO_META


def _poses(results):
    return [[(k, float((b[2] - b[0]) * (b[3] - b[1]))) for k, b in zip(r.keypoints, r.boxes, strict=True)]
            for r in results]


def _run(video, pipeline, frames_per_step=1):
    results = []
    for start in range(0, len(video), frames_per_step):
        results += pipeline(video.frames[start:start + frames_per_step])
    return results


@pytest.mark.parametrize("detect_every", [5, 10])
def test_detecting_every_n_frames_keeps_the_poses(crossing_video, truth_poses, truth_detector, detect_every):
    detector = truth_detector(crossing_video)
    every = _run(crossing_video, PoseVideoPipeline(truth_poses(crossing_video), COCO_META, detector))
    calls = []

    def counted(frame):
        calls.append(1)
        return detector(frame)

    sparse = PoseVideoPipeline(truth_poses(crossing_video), COCO_META, counted, detect_every=detect_every)
    results = _run(crossing_video, sparse)
    assert len(calls) <= len(crossing_video) // detect_every + 3  # re-detection only when persons are lost
    oks = pose_agreement(_poses(every), _poses(results))
    assert oks >= 0.95, f"mean OKS {oks:.3f} of detect-every-{detect_every} against detecting every frame"
    # several frames per call: more latency in the carried boxes, still close
    batched = PoseVideoPipeline(truth_poses(crossing_video), COCO_META, detector, detect_every=detect_every)
    assert pose_agreement(_poses(every), _poses(_run(crossing_video, batched, frames_per_step=3))) >= 0.9


def test_pipeline_tracking_keeps_ids(crossing_video, truth_poses, truth_detector, id_accuracy):
    pipeline = PoseVideoPipeline(truth_poses(crossing_video), COCO_META, truth_detector(crossing_video),
                                 detect_every=5, tracker=Tracker("pose"),
                                 smoother=KeypointSmoother(crossing_video.fps))
    pairs = []
    for frame, persons in zip(crossing_video.frames, crossing_video.truth, strict=True):
        (result,) = pipeline([frame])
        assert result.track_ids is not None and len(result.track_ids) == len(result.keypoints)
        for truth in persons:  # the result whose keypoints are nearest the true person's
            seen = truth.keypoints[:, 2] > 0
            errors = [np.abs(k[seen, :2] - truth.keypoints[seen, :2]).mean() for k in result.keypoints]
            if errors and min(errors) < 0.1 * np.sqrt(truth.area):
                pairs.append((truth.track_id, int(result.track_ids[int(np.argmin(errors))])))
    total = sum(len(p) for p in crossing_video.truth)
    assert len(pairs) >= 0.95 * total
    assert id_accuracy(pairs) >= 0.95


def test_without_a_detector_and_bad_settings(crossing_video, truth_poses):
    with pytest.raises(ValueError, match="detect_every"):
        PoseVideoPipeline(truth_poses(crossing_video), COCO_META, None, detect_every=0)
    with pytest.raises(ValueError, match="tracker"):
        PoseVideoPipeline(truth_poses(crossing_video), COCO_META, None, smoother=KeypointSmoother())


class TinyPose(torch.nn.Module):
    """A fixed random conv net standing in for a pose model (17 heatmaps at 1/4 of 64x48)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(8, 17, 3, 2, 1))

    def forward(self, x):
        return self.net(x)


def test_tiny_model_end_to_end_on_a_video_file(tmp_path, single_torch_thread):
    from hrnet.inference.pose_bench import write_video

    video = moving_people(6, size=(64, 96), num_people=2, seed=3)
    clip = write_video(video, tmp_path / "people.mp4")
    predictor = TopDownPredictor(TinyPose(), MSRAHeatmap((48, 64), (12, 16), 2.0), COCO_META, flip_test=False)
    boxes = {i: np.stack([p.box for p in t]) for i, t in enumerate(video.truth)}
    seen = []

    def detector(frame):
        seen.append(1)
        return boxes[len(seen) - 1], np.ones(len(boxes[len(seen) - 1]))

    timer = StageTimer()
    pipeline = PoseVideoPipeline(predictor, COCO_META, detector, tracker=Tracker("box"), timer=timer,
                                 source=str(clip))
    summary = process_video(open_frames(clip), pipeline.step, video_out=tmp_path / "out.mp4",
                            json_out=tmp_path / "out.jsonl", progress=False)
    assert summary.frames == 6 and (tmp_path / "out.mp4").is_file()
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(6)) and all(r["task"] == "pose" for r in records)
    assert [len(r["instances"]) for r in records] == [len(t) for t in video.truth]
    assert {i["track_id"] for r in records for i in r["instances"]} == {0, 1}
    assert {"detect", "crop", "pose", "decode", "track", "draw"} <= set(timer.seconds)


def test_pose_agreement_counts_missing_persons_as_zero():
    k = np.zeros((17, 3))
    k[:, 0] = np.arange(17) * 5
    assert pose_agreement([[(k, 100.0)]], [[(k.copy(), 100.0)]]) == pytest.approx(1.0)
    assert pose_agreement([[(k, 100.0), (k + 500, 100.0)]], [[(k, 100.0)]]) == pytest.approx(0.5)
    far = k.copy()
    far[:, :2] += 30
    assert pose_agreement([[(k, 100.0)]], [[(far, 100.0)]]) < 0.1


def test_video_benchmark_runs_and_reports_every_stage(single_torch_thread):
    video = moving_people(4, size=(64, 96), num_people=2, seed=4)
    model = build_model("pose_hrnet_w32", width=8, blocks=1, modules=[1, 1, 1], stage1_blocks=1).eval()
    codec = MSRAHeatmap((64, 96), (16, 24), 2.0)
    report = run_video_benchmark(model, codec, COCO_META, video, [
        {"name": "eager batched", "path": "eager"},
        {"name": "every 2, tracking", "path": "eager", "detect_every": 2, "track": True},
    ], log=lambda _: None)
    ref, batched, _ = report.runs
    assert ref.frames == batched.frames == 4 and ref.detections == 4
    assert batched.oks == pytest.approx(1.0, abs=1e-3)  # same boxes, same model: the same poses
    table = report.markdown()
    assert "| reference |" in table and "video decode %" in table and "heatmap decode %" in table


def test_bench_video_pipeline_refuses_what_it_cannot_time(capsys):
    from hrnet.cli.main import main

    configs = Path(__file__).resolve().parents[2] / "configs"
    assert main(["bench", "--pipeline", "video", "pose_hrnet_w32"]) == 2
    assert "needs a pose config" in capsys.readouterr().err
    assert main(["bench", "--pipeline", "video", str(configs / "segmentation/synthetic/hrnetv2_tiny.yaml")]) == 2
    assert "'segmentation' config" in capsys.readouterr().err
    assert main(["bench", "--pipeline", "video", str(configs / "pose/synthetic/quickstart.yaml"), "--fast-path",
                 "onnxruntime_int9"]) == 2
    assert "onnxruntime_int8" in capsys.readouterr().err  # the close name suggested


def test_truth_detector_finds_frames_by_their_pixels_and_can_cost_a_real_detectors_time(single_torch_thread):
    from hrnet.inference.pose_bench import TruthDetector, torchvision_cost

    video = moving_people(3, size=(64, 96), num_people=2, seed=5)
    boxes = [np.stack([p.box for p in t]) for t in video.truth]
    runs = []
    detector = TruthDetector(video.frames, boxes, cost=lambda frame: runs.append(frame.shape))
    found, scores = detector(video.frames[2].copy())  # another array with the same pixels
    np.testing.assert_array_equal(found, boxes[2])
    assert scores.tolist() == [1.0, 1.0] and runs == [(64, 96, 3)]
    with pytest.raises(KeyError):
        detector(np.zeros_like(video.frames[0]))
    from hrnet.tasks.detection.person import PersonDetector

    model = torchvision_cost("ssdlite320_mobilenet_v3_large")
    assert not model.training
    persons, person_scores = PersonDetector(model, score_threshold=0.0)(video.frames[0])
    assert persons.shape[1:] == (4,) and len(persons) == len(person_scores)
