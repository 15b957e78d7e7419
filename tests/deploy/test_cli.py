"""``hrnet export`` and ``hrnet bench`` end to end on a tiny model."""

import argparse
import json

import cv2
import numpy as np
import pytest
import torch

from hrnet.cli.export import add_bench_parser, add_export_parser
from hrnet.deploy import OnnxRunner, calibration_batches
from hrnet.errors import ConfigError
from hrnet.media import IMAGENET_MEAN, IMAGENET_STD

TINY_OPTIONS = ["--set", "width=4", "--set", "blocks=1", "--set", "modules=[1,1,1]", "--set", "stage1_blocks=1"]


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_export_parser(sub)
    add_bench_parser(sub)
    args = parser.parse_args(argv)
    return args.run(args)


def test_export_int8_with_calibration_images(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), rng.integers(0, 255, (50, 40, 3), dtype=np.uint8))
    out = tmp_path / "pose.int8.onnx"
    code = _run(["export", "pose_hrnet_w32", *TINY_OPTIONS, "--input", "64", "64", "--format", "onnx-int8",
                 "--calib", str(tmp_path), "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "ONNX Runtime vs PyTorch" in text and "ok" in text
    assert OnnxRunner(out)(torch.zeros(2, 3, 64, 64)).shape == (2, 17, 16, 16)  # any batch size
    assert not (tmp_path / "pose.int8.fp32.onnx").exists()  # the intermediate fp32 file is removed


def test_calibration_images_are_required_to_exist(tmp_path):
    with pytest.raises(ConfigError, match="no images"):
        calibration_batches(tmp_path, (64, 64), IMAGENET_MEAN, IMAGENET_STD)


def test_bench_prints_and_writes_the_table(tmp_path, capsys):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    code = _run(["bench", "pose_hrnet_w32", *TINY_OPTIONS, "--input", "64", "64", "--batch", "1", "2",
                 "--paths", "channels_last", "--min-time", "0", "--threads", "1", "--no-yardstick",
                 "--json", str(out_json), "--markdown", str(out_md)])
    assert code == 0, capsys.readouterr()
    table = out_md.read_text()
    assert "| eager | fp32 |" in table and "| channels_last | fp32 |" in table
    data = json.loads(out_json.read_text())
    assert [r["path"] for r in data["results"]] == ["eager", "channels_last"]
    assert all(r["error"] is None and r["parity_ok"] for r in data["results"])
    assert data["conv_peak_gflops"]["fp32_channels_last"] > 0
