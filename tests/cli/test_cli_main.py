import json
import sys

import pytest
import torch
from engine_testutils import run_hrnet, toy_config, write_config

from hrnet.cli.main import build_parser, main

SUBCOMMANDS = [
    "info",
    "quickstart",
    "train",
    "eval",
    "predict",
    "export",
    "bench",
    "convert",
    "data",
    "data synth",
    "weights",
    "weights list",
    "configs",
    "configs list",
    "configs show",
    "configs copy",
    "weights get",
    "weights add",
    "ablate",
]


@pytest.mark.parametrize("command", ["", *SUBCOMMANDS])
def test_help_of_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command.split(), "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: hrnet {command}".rstrip())


def test_every_subcommand_is_listed():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {c.split()[0] for c in SUBCOMMANDS}


def test_usage_errors_exit_2(capsys):
    for argv in ([], ["train"], ["eval", "cfg.yaml"], ["data", "synth", "--task", "audio", "--out", "x"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    capsys.readouterr()


def test_bad_config_exits_2_with_one_paragraph(tmp_path, capsys):
    raw = toy_config(tmp_path)
    raw["train"]["optimzer"] = {"name": "adam"}
    config = write_config(tmp_path / "bad.yaml", raw)
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "'train.optimzer'" in err and "Did you mean 'optimizer'" in err
    assert main(["train", str(write_config(tmp_path / "ok.yaml", toy_config(tmp_path))), "train.epochs=ten"]) == 2
    assert "train.epochs" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_missing_dataset_exits_2(tmp_path, capsys):
    config = write_config(tmp_path / "toy.yaml", toy_config(tmp_path, data={"root": str(tmp_path / "no_data")}))
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hrnet train: error: ") and "no_data does not exist" in err


def test_user_error_in_a_fresh_process_has_no_traceback(tmp_path):
    config = write_config(tmp_path / "toy.yaml", toy_config(tmp_path, data={"root": str(tmp_path / "no_data")}))
    result = run_hrnet(["train", str(config)])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "no_data does not exist" in result.stderr


def test_train_eval_predict_round_trip(tmp_path, capsys):
    raw = toy_config(tmp_path, train={"epochs": 1})
    config = write_config(tmp_path / "toy.yaml", raw)
    assert main(["train", str(config), "train.log_every=5"]) == 0
    out = capsys.readouterr().out
    assert "Training done: 10 steps" in out and "best score" in out
    best = tmp_path / "run" / "checkpoints" / "best.pt"

    assert main(["eval", str(config), "--weights", str(best), "--out", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert f"score  {metrics['score']:.4f}" in out

    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps([[1.0, 2.0, 3.0, 4.0]]))
    argv = ["predict", str(config), "--weights", str(best), str(sample), "--out", str(tmp_path / "pred")]
    assert main([*argv, "--option", "scale=0"]) == 0
    assert json.loads((tmp_path / "pred" / "sample.pred.json").read_text()) == [[0.0, 0.0]]
    assert main([*argv[:-3], str(tmp_path / "absent.json"), "--out", str(tmp_path / "pred")]) == 2
    assert "input not found" in capsys.readouterr().err
    assert main(["eval", str(config), "--weights", str(tmp_path / "nope.pt")]) == 2
    assert "nope.pt does not exist" in capsys.readouterr().err


def test_export_and_bench_without_deployment_tools_exit_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "hrnet.cli.export", None)  # as if the deployment tools were missing
    assert main(["export", "pose_hrnet_w32", "--out", "m.onnx", "--input", "256", "192"]) == 2
    err = capsys.readouterr().err
    assert "`hrnet export` is not available yet" in err and "hrnet.cli.export" in err
    assert main(["bench", "pose_hrnet_w32"]) == 2
    assert "`hrnet bench` is not available yet" in capsys.readouterr().err


def test_convert_writes_safetensors_and_metadata(tmp_path, capsys):
    from safetensors.torch import load_file

    state = {"module.fc.weight": torch.randn(3, 2), "module.fc.bias": torch.randn(3)}
    torch.save({"state_dict": state, "epoch": 5}, tmp_path / "official.pth")
    assert main(["convert", str(tmp_path / "official.pth"), "--out", str(tmp_path / "converted")]) == 0
    tensors = load_file(tmp_path / "converted.safetensors")
    assert torch.equal(tensors["fc.weight"], state["module.fc.weight"])  # DataParallel prefix removed
    metadata = json.loads((tmp_path / "converted.json").read_text())
    assert metadata["tensors"] == 2 and len(metadata["source_sha256"]) == 64
    assert "converted.safetensors" in capsys.readouterr().out
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    assert main(["convert", str(tmp_path / "broken.pth"), "--out", str(tmp_path / "x.safetensors")]) == 2


def test_data_synth(tmp_path, capsys):
    out = tmp_path / "cls"
    argv = ["data", "synth", "--task", "cls", "--out", str(out), "--num-train", "8", "--num-val", "8"]
    assert main([*argv, "--image-size", "32", "32"]) == 0
    assert len(list((out / "train").rglob("*.jpg"))) == 8 and len(list((out / "val").rglob("*.jpg"))) == 8
    assert f"Synthetic cls dataset in {out}" in capsys.readouterr().out
    assert main([*argv[:-1], "2"]) == 2  # too few images for the classes
    assert capsys.readouterr().err.startswith("hrnet data synth: error: ")
