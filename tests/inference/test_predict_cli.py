"""``hrnet predict`` over the Inferencer for every task (one naming scheme, images, folders, videos) and
``hrnet predict/eval --path`` through the deploy paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
from inference_testutils import SETUPS, first_image, make_video, val_images

from hrnet.cli.main import main
from hrnet.media import image_files, read_image


@pytest.mark.parametrize("task", list(SETUPS))
def test_predict_writes_the_same_outputs_for_every_task(task, tiny, tmp_path, capsys):
    config, weights, root = tiny(task)
    video = make_video(tmp_path / "clip.mp4", frames=3)
    out = tmp_path / "out"
    folder = val_images(root)
    assert main(["predict", str(config), "--weights", str(weights), str(folder), str(video), "--out", str(out)]) == 0
    images = image_files(folder, recursive=True)
    records = json.loads((out / "predictions.json").read_text())
    assert [r["file"] for r in records] == [str(f) for f in images]
    assert {r["task"] for r in records} == {task}
    for image in images:
        overlay = read_image(out / f"{image.stem}_{task}.png")
        assert overlay.shape == read_image(image).shape
    if task == "segmentation":
        labels = read_image(out / f"{images[0].stem}_label.png")
        assert labels.max() < len(records[0]["classes"])
    lines = [json.loads(line) for line in (out / f"clip_{task}.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in lines] == [0, 1, 2] and all(r["file"] == str(video) for r in lines)
    import cv2

    capture = cv2.VideoCapture(str(out / f"clip_{task}.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 3 and capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)
    capture.release()
    if task == "classification":
        assert str(images[0]) in capsys.readouterr().out  # the top classes are printed too


@pytest.mark.parametrize("path", ["channels_last", "onnxruntime"])
def test_predict_through_an_fp32_path_agrees_with_eager(path, tiny, tmp_path):
    config, weights, root = tiny("pose")
    image = first_image(root)
    poses = {}
    for name in ("eager", path):
        out = tmp_path / name
        assert main(["predict", str(config), "--weights", str(weights), str(image), "--out", str(out),
                     "--path", name]) == 0
        [record] = json.loads((out / "predictions.json").read_text())
        poses[name] = np.array(record["instances"][0]["keypoints"])
    np.testing.assert_allclose(poses[path], poses["eager"], atol=1e-3)


def test_int8_calibrates_on_training_images_once(tiny, tmp_path, monkeypatch):
    """The int8 model is calibrated on the train split (count configurable) and cached: a second run with
    the same calibration reuses it; another count makes another."""
    monkeypatch.setenv("HRNET_CACHE_DIR", str(tmp_path / "cache"))
    config, weights, root = tiny("pose")
    image = str(first_image(root))

    def run(count: int) -> list:
        assert main(["predict", str(config), "--weights", str(weights), image, "--out", str(tmp_path / "o"),
                     "--path", "onnxruntime_int8", "--calibration-images", str(count)]) == 0
        [record] = json.loads((tmp_path / "o" / "predictions.json").read_text())
        assert np.array(record["instances"][0]["keypoints"]).shape == (17, 3)
        return sorted((tmp_path / "cache").rglob("*.int8-*.onnx"))

    first = run(2)
    assert len(first) == 1
    assert run(2) == first
    assert len(run(3)) == 2


def test_eval_through_a_deploy_path_gives_the_eager_metrics(tiny, tmp_path, capsys):
    config, weights, _ = tiny("pose")
    metrics = {}
    for name in ("eager", "onnxruntime"):
        out = tmp_path / name
        assert main(["eval", str(config), "--weights", str(weights), "--path", name, "--out", str(out)]) == 0
        metrics[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    assert metrics["onnxruntime"]["AP"] == pytest.approx(metrics["eager"]["AP"], abs=1e-6)
    assert "AP" in capsys.readouterr().out


def test_bad_path_names_are_clear_errors(tiny, tmp_path, capsys):
    config, weights, root = tiny("pose")
    base = ["--weights", str(weights), "--path"]
    assert main(["eval", str(config), *base, "onnx_runtime"]) == 2
    assert "unknown inference path 'onnx_runtime'" in capsys.readouterr().err
    image = str(first_image(root))
    assert main(["predict", str(config), *base, "compile_bf61", image, "--out", str(tmp_path / "o")]) == 2
    assert "Did you mean 'compile_bf16'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_eval_through_the_compiled_paths(tiny, tmp_path):
    """``compile`` gives the eager metrics; ``compile_bf16`` runs the same evaluation (its accuracy on trained
    weights is in docs/performance.md)."""
    config, weights, _ = tiny("pose")
    metrics = {}
    for name in ("eager", "compile", "compile_bf16"):
        out = tmp_path / name
        assert main(["eval", str(config), "--weights", str(weights), "--path", name, "--out", str(out)]) == 0
        metrics[name] = json.loads((out / "metrics.json").read_text())
    assert metrics["compile"]["AP"] == pytest.approx(metrics["eager"]["AP"], abs=1e-6)
    assert set(metrics["compile_bf16"]) == set(metrics["eager"]) and 0 <= metrics["compile_bf16"]["AP"] <= 1
