"""The command line takes what its docs show, and each bad input gets a clear answer."""

import json

import cv2
import numpy as np
import pytest
import torch
from engine_testutils import toy_config, write_config

import hrnet
from hrnet.cli.main import main, parse_args
from hrnet.engine.checkpoint import load_state_dict_checked
from hrnet.errors import CheckpointError
from hrnet.experiments.ablation import _ranking_verdict
from hrnet.media import image_truncation

SMALL = {"blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1}


@pytest.fixture
def trained(tmp_path, capsys):
    """A toy config trained for one epoch, and its best checkpoint."""
    config = write_config(tmp_path / "toy.yaml", toy_config(tmp_path, train={"epochs": 1}))
    assert main(["train", str(config)]) == 0
    capsys.readouterr()
    return config, tmp_path / "run" / "checkpoints" / "best.pt"


def test_overrides_after_the_options(trained, tmp_path, capsys):
    config, best = trained
    missing = tmp_path / "moved_data"
    assert main(["eval", str(config), "--weights", str(best), f"data.root={missing}"]) == 2
    assert "moved_data" in capsys.readouterr().err  # the override reached the config
    assert main(["eval", str(config), "--weights", str(best), f"data.root={tmp_path / 'toy_data'}",
                 "--out", str(tmp_path / "ev")]) == 0
    assert "score" in capsys.readouterr().out


def test_resume_with_more_epochs(trained, capsys):
    config, _ = trained
    assert main(["train", str(config), "--resume", "train.epochs=2"]) == 0
    assert "Training done: 20 steps" in capsys.readouterr().out


def test_overrides_anywhere_on_the_line():
    args = parse_args(["predict", "c.yaml", "a.k=1", "--weights", "w.pt", "in.png", "b.k=2", "--out", "o", "c.k=3"])
    assert args.overrides == ["a.k=1", "b.k=2", "c.k=3"] and args.inputs == ["in.png"]
    assert parse_args(["quickstart", "--out", "q", "train.epochs=1"]).overrides == ["train.epochs=1"]


def test_a_usage_error_prints_the_subcommands_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["eval", "c.yaml", "--weights", "w.pt", "--bogus"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: hrnet eval") and "unrecognized arguments: --bogus" in err
    with pytest.raises(SystemExit):
        main(["info", "pose_hrnet_w32", "width=8"])  # info takes --set, not overrides
    assert capsys.readouterr().err.startswith("usage: hrnet info")
    with pytest.raises(SystemExit):
        main(["weights", "get"])
    assert capsys.readouterr().err.startswith("usage: hrnet weights get")


def test_threads_option_on_the_compute_commands(tmp_path, capsys):
    for argv in (["train", "c.yaml"], ["eval", "c.yaml", "--weights", "w"], ["export", "p", "--out", "o.onnx"],
                 ["predict", "c.yaml", "--weights", "w", "x.png", "--out", "o"], ["bench", "p"]):
        assert parse_args([*argv, "--threads", "3"]).threads == 3
    threads = torch.get_num_threads()
    try:
        assert main(["train", str(tmp_path / "missing.yaml"), "--threads", "1"]) == 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(SystemExit):
        parse_args(["train", "c.yaml", "--threads", "0"])
    assert "expected a number >= 1" in capsys.readouterr().err


def test_convert_src_dst(tmp_path, capsys):
    torch.save({"fc.weight": torch.randn(2, 2)}, tmp_path / "a.pth")
    assert main(["convert", str(tmp_path / "a.pth"), str(tmp_path / "b.safetensors")]) == 0
    assert (tmp_path / "b.safetensors").is_file() and (tmp_path / "b.json").is_file()
    assert main(["convert", str(tmp_path / "a.pth")]) == 2
    assert "hrnet convert SRC DST" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "a.pth"), str(tmp_path / "c"), "--out", str(tmp_path / "d")]) == 2


def test_a_checkpoint_of_another_model_is_summarised_with_the_config_hint():
    small = hrnet.build_model("pose_hrnet_w32", width=4, **SMALL)
    model = hrnet.build_model("pose_hrnet_w32", width=8, **SMALL)
    with pytest.raises(CheckpointError, match=r"the file holds an HRNet backbone with branch widths 4/8/16/32.*"
                                              r"the model has an HRNet backbone with branch widths 8/16/32/64.*"
                                              r"config\.yaml"):
        load_state_dict_checked(model, small.state_dict(), "best.pt")


def test_detector_as_a_prediction_option_is_refused(trained, tmp_path, capsys):
    config, best = trained
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps([[1.0, 2.0, 3.0, 4.0]]))
    argv = ["predict", str(config), "--weights", str(best), str(sample), "--out", str(tmp_path / "p")]
    assert main([*argv, "--option", "detector=faster_rcnn_hrnetv2p_w32"]) == 2
    err = capsys.readouterr().err
    assert "--option detector=... is not a prediction option" in err and "--detector" in err
    assert "Traceback" not in err


def test_a_truncated_jpeg_is_reported_by_name(trained, tmp_path, capsys):
    config, best = trained
    ok, data = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    whole, cut = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    whole.write_bytes(data.tobytes())
    cut.write_bytes(data.tobytes()[: len(data) // 2])
    assert image_truncation(whole) is None and "end-of-image" in image_truncation(cut)
    assert main(["predict", str(config), "--weights", str(best), str(cut), "--out", str(tmp_path / "p")]) == 2
    assert f"image {cut} is truncated" in capsys.readouterr().err


def test_truncated_png_and_other_formats(tmp_path):
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    for suffix in (".png", ".bmp"):
        data = cv2.imencode(suffix, image)[1].tobytes()
        path = tmp_path / f"x{suffix}"
        path.write_bytes(data)
        assert image_truncation(path) is None
        path.write_bytes(data[: len(data) // 2])
        assert image_truncation(path) is not None


def test_export_of_a_config_uses_its_input_size(tmp_path):
    from hrnet.cli.export import _input_size

    raw = {"task": "pose", "model": {"name": "pose_hrnet_w32", "overrides": {"width": 4, **SMALL,
                                                                               "modules": [1, 1, 1]}},
           "data": {"root": str(tmp_path), "input_size": [96, 128]}}
    config = write_config(tmp_path / "pose.yaml", raw)
    args = parse_args(["export", str(config), "--out", str(tmp_path / "m.onnx")])
    model = hrnet.build_model("pose_hrnet_w32", width=4, **SMALL)
    assert _input_size(args, model) == (128, 96)
    preset = parse_args(["export", "pose_hrnet_w32", "--out", str(tmp_path / "m.onnx")])
    assert _input_size(preset, model) == (256, 192)


def test_ablation_with_equal_results_is_undecided():
    rows = [{"variant": v, "ours": 0.0, "paper": p} for v, p in (("a", 70.8), ("b", 71.9), ("c", 73.4))]
    verdict = _ranking_verdict(rows)
    assert "is undecided against" in verdict and "agrees with" not in verdict
    assert "0 of 3 pairwise orderings agree, 3 undecided" in verdict and "a = b = c" in verdict
