"""Frame sources (files, webcams through a fake capture, image sequences), MP4 and JSON-lines output."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hrnet.errors import DataError
from hrnet.inference.video import VideoWriter, open_frames, process_video, webcam_index
from hrnet.media import write_image


def _write_clip(path, count=6, size=(32, 48), fps=12.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
    for i in range(count):
        writer.write(np.full((*size, 3), 20 * i % 250, np.uint8))
    writer.release()
    return path


def _numbered_step(frames):
    """Draws nothing new: each frame comes back with its mean value as the record."""
    return [(frame, {"mean": round(float(frame.mean()))}) for frame in frames]


def test_a_video_file_is_read_in_order_at_its_frame_rate(tmp_path):
    source = open_frames(_write_clip(tmp_path / "clip.mp4"))
    assert source.fps == pytest.approx(12.0) and not source.live and source.frame_count == 6
    means = [frame.mean() for frame in source]
    assert len(means) == 6 and np.all(np.diff(means) > 10)
    assert not source._thread.is_alive()


def test_process_video_writes_mp4_and_json_lines(tmp_path):
    clip = _write_clip(tmp_path / "clip.mp4")
    summary = process_video(open_frames(clip), _numbered_step, video_out=tmp_path / "out" / "clip.mp4",
                            json_out=tmp_path / "out" / "clip.jsonl", frames_per_step=4, progress=False)
    assert summary.frames == 6 and summary.written == [tmp_path / "out" / "clip.mp4", tmp_path / "out" / "clip.jsonl"]
    lines = [json.loads(line) for line in (tmp_path / "out" / "clip.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(6)) and lines[3]["mean"] == pytest.approx(60, abs=3)
    again = open_frames(tmp_path / "out" / "clip.mp4")
    assert again.fps == pytest.approx(12.0) and len(list(again)) == 6
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.jsonl", "clip.mp4"]  # no temp files


def test_max_frames_stops_early_and_stops_the_reader(tmp_path):
    clip = _write_clip(tmp_path / "clip.mp4", count=20)
    source = open_frames(clip, queue_size=2)
    summary = process_video(source, _numbered_step, json_out=tmp_path / "a.jsonl", max_frames=5, progress=False)
    assert summary.frames == 5 and len((tmp_path / "a.jsonl").read_text().splitlines()) == 5
    assert not source._thread.is_alive()


def test_a_failing_step_leaves_no_output_files(tmp_path):
    clip = _write_clip(tmp_path / "clip.mp4")
    calls = []

    def step(frames):
        calls.append(len(frames))
        if len(calls) == 3:
            raise RuntimeError("model failed")
        return _numbered_step(frames)

    with pytest.raises(RuntimeError, match="model failed"):
        process_video(open_frames(clip), step, video_out=tmp_path / "o.mp4", json_out=tmp_path / "o.jsonl",
                      progress=False)
    assert list(tmp_path.iterdir()) == [clip]


def test_video_writer_is_atomic(tmp_path):
    with pytest.raises(ValueError), VideoWriter(tmp_path / "v.mp4", 10) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8))
        raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_webcam_with_a_fake_capture_and_no_display(tmp_path, fake_capture, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    opened = []

    def factory(index):
        opened.append(index)
        return fake_capture(count=7, fps=30.0)

    source = open_frames("webcam:2", capture_factory=factory)
    assert opened == [2] and source.live and source.fps == 30.0 and source.frame_count is None
    messages = []
    summary = process_video(source, _numbered_step, video_out=tmp_path / "cam.mp4", json_out=tmp_path / "cam.jsonl",
                            frames_per_step=4, progress=False, log=messages.append)
    assert not summary.shown and "no display" in messages[0] and str(tmp_path / "cam.mp4") in messages[0]
    records = [json.loads(line) for line in (tmp_path / "cam.jsonl").read_text().splitlines()]
    assert [r["mean"] for r in records] == list(range(7))  # every frame, one at a time, in order
    assert len(list(open_frames(tmp_path / "cam.mp4"))) == 7


def test_sources_that_cannot_be_read_are_named(tmp_path, fake_capture):
    with pytest.raises(DataError, match="cannot open webcam 3"):
        open_frames(3, capture_factory=lambda index: fake_capture(opened=False))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(DataError, match="broken.mp4"):
        list(open_frames(broken))
    with pytest.raises(DataError, match="missing.mp4"):
        open_frames(tmp_path / "missing.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images in folder"):
        open_frames(empty)
    with pytest.raises(DataError, match="webcam:x"):
        webcam_index("webcam:x")


def test_a_folder_is_an_image_sequence(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"{i:03d}.png", np.full((8, 8, 3), 50 * i, np.uint8))
    source = open_frames(tmp_path, default_fps=5.0)
    assert source.fps == 5.0 and source.frame_count == 3
    assert [int(frame[0, 0, 0]) for frame in source] == [0, 50, 100]
    assert [int(f[0, 0, 0]) for f in open_frames([tmp_path / "002.png", tmp_path / "000.png"])] == [100, 0]


def test_webcam_index():
    assert [webcam_index(s) for s in (0, 2, "webcam", "webcam:1", "3", "clip.mp4")] == [0, 2, 0, 1, 3, None]


def test_a_display_is_needed_for_the_live_window(monkeypatch):
    from hrnet.inference import video

    monkeypatch.setattr(video.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not video.display_available()
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(video.cv2, "getBuildInformation", lambda: "  GUI:    NONE\n")
    assert not video.display_available()
    monkeypatch.setattr(video.cv2, "getBuildInformation", lambda: "  GUI:    GTK3\n    GTK+: YES\n")
    assert video.display_available()


def test_a_webcam_is_shown_live_and_q_ends_the_run(tmp_path, fake_capture, monkeypatch):
    from hrnet.inference import video

    shown = []

    class FakeWindow:
        def __init__(self, title):
            self.title = title

        def show(self, frame):
            shown.append(int(frame[0, 0, 0]))
            return len(shown) < 3  # q pressed on the third frame

        def close(self):
            shown.append("closed")

    monkeypatch.setattr(video, "display_available", lambda: True)
    monkeypatch.setattr(video, "LiveWindow", FakeWindow)
    source = open_frames(0, capture_factory=lambda index: fake_capture(count=50))
    summary = process_video(source, _numbered_step, json_out=tmp_path / "cam.jsonl", progress=False)
    assert summary.shown and summary.frames == 3 and shown == [0, 1, 2, "closed"]
    assert len((tmp_path / "cam.jsonl").read_text().splitlines()) == 3
