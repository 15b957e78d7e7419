"""Checkpoints that are wrong in ways a shape check misses: integer-stored weights, empty files, random
bytes and pickles that would run code, through every loading path (load_weights, training resume,
``hrnet convert``)."""

import os
import pickle

import pytest
import torch

import hrnet
from hrnet.cli.main import main as hrnet_main
from hrnet.engine.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from hrnet.errors import CheckpointError
from hrnet.models.weights import convert_checkpoint, load_weights, save_weights

TINY = {"width": 4, "blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1}


def tiny_pose() -> torch.nn.Module:
    return hrnet.build_model("pose_hrnet_w32", **TINY)


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8])
def test_floating_point_weights_stored_as_integers_are_refused_by_name(tmp_path, dtype, capsys):
    model = tiny_pose()
    path = save_weights({k: (v * 10).to(dtype) for k, v in model.state_dict().items()}, tmp_path / "int.safetensors")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=rf"stores \d+ floating-point tensor\(s\) as integers.*conv1.weight "
                                              rf"\({dtype}\)"):
        load_weights(model, path, verbose=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    with pytest.raises(CheckpointError, match="as integers"):
        convert_checkpoint(path, tmp_path / "out.safetensors", model=tiny_pose())
    with pytest.raises(CheckpointError, match=r"as integers.*bn1.weight"):
        convert_checkpoint(path, tmp_path / "out.safetensors")  # without a model: by name
    options = [f"--set={k}={list(v) if isinstance(v, tuple) else v}" for k, v in TINY.items()]
    assert hrnet_main(["convert", str(path), "--out", str(tmp_path / "o.safetensors"),
                       "--model", "pose_hrnet_w32", *options]) == 2
    assert "as integers" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()
    # a training checkpoint with integer weights is refused when resuming or evaluating, too
    save_checkpoint(tmp_path / "last.pt", {"model": {k: v.to(dtype) for k, v in model.state_dict().items()}})
    with pytest.raises(CheckpointError, match="integer tensors where the model has floating point"):
        load_model_weights(tiny_pose(), tmp_path / "last.pt")


def test_integer_buffers_that_are_integers_still_load(tmp_path):
    model = tiny_pose()
    path = save_weights(model, tmp_path / "fine.safetensors")  # num_batches_tracked is int64 by nature
    report = load_weights(tiny_pose(), path, verbose=False)
    assert not report.missing and any(k.endswith("num_batches_tracked") for k in report.loaded)


def test_an_empty_training_checkpoint_is_one_clear_error(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"last.pt is empty \(0 bytes\)"):
        load_checkpoint(tmp_path / "last.pt")


def test_random_bytes_are_corrupt_not_dangerous(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(bytes(range(256)) * 4 + os.urandom(4096))
    for load in (load_checkpoint, lambda p: load_weights(tiny_pose(), p, verbose=False)):
        with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
            load(path)
        assert "run code" not in str(info.value) and "weights_only" not in str(info.value)


class _RunsAShellCommand:
    """A real malicious payload: unpickling it would call ``os.system`` (never done in this test)."""

    def __init__(self, marker):
        self.command = f"touch {marker}"

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("form", ["torch.save", "pickle protocol 4", "pickle protocol 2"])
def test_a_malicious_pickle_is_refused_naming_the_global_it_would_call(tmp_path, form, capsys):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    payload = {"state_dict": tiny_pose().state_dict(), "hook": _RunsAShellCommand(marker)}
    if form == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=int(form[-1]))
    system = f"{os.system.__module__}.system"  # posix.system
    loaders = {
        "load_weights (model.init_from)": lambda: load_weights(tiny_pose(), path, verbose=False),
        "training checkpoint": lambda: load_checkpoint(path),
        "convert": lambda: convert_checkpoint(path, tmp_path / "out.safetensors"),
    }
    for what, load in loaders.items():
        with pytest.raises(CheckpointError, match=rf"was refused: .*\({system}\).*could run code") as info:
            load()
        assert "weights_only=False" not in str(info.value) and "`weights_only`" not in str(info.value), what
    assert hrnet_main(["convert", str(path), "--out", str(tmp_path / "o.safetensors")]) == 2
    assert system in capsys.readouterr().err
    assert not marker.exists()
