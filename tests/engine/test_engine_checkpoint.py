import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from hrnet.engine.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from hrnet.engine.seeding import capture_rng_state, restore_rng_state
from hrnet.errors import CheckpointError


def test_interrupted_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"global_iter": 1, "model": {"w": torch.ones(3)}})

    def crash_midway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"global_iter": 2, "model": {"w": torch.zeros(3)}})
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["global_iter"] == 1 and torch.equal(state["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one(tmp_path):
    path = tmp_path / "last.pt"
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from hrnet.engine.checkpoint import save_checkpoint
        save_checkpoint({str(path)!r}, {{"global_iter": 1, "model": {{"w": torch.ones(1000)}}}})
        real_save = torch.save
        def killed_midway(obj, f, *args, **kwargs):
            f.write(b"PK\\x03\\x04 partial")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = killed_midway
        save_checkpoint({str(path)!r}, {{"global_iter": 2, "model": {{"w": torch.zeros(1000)}}}})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert load_checkpoint(path)["global_iter"] == 1


def test_unsafe_truncated_and_foreign_files_are_refused(tmp_path):
    pickled_code = tmp_path / "code.pt"
    torch.save({"format": "hrnet-checkpoint", "hook": np.random.RandomState}, pickled_code)
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(pickled_code)
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"model": {"w": torch.ones(100)}})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"w": torch.ones(1)}, foreign)
    with pytest.raises(CheckpointError, match="not an hrnet training checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_model_weights_must_fit(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"model": {"weight": torch.ones(2, 4), "bias": torch.ones(2), "extra": torch.ones(1)}})
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): extra.*shape mismatches \(1\): weight"):
        load_model_weights(model, path)
    save_checkpoint(path, {"model": {"weight": torch.full((2, 3), 2.0), "bias": torch.zeros(2)}})
    load_model_weights(model, path)
    assert torch.equal(model.weight, torch.full((2, 3), 2.0))


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached Gaussian in NumPy's state
    save_checkpoint(tmp_path / "rng.pt", {"rng": [capture_rng_state()]})
    expected = (random.random(), np.random.randn(3), torch.rand(3))
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"][0])
    again = (random.random(), np.random.randn(3), torch.rand(3))
    assert expected[0] == again[0] and np.array_equal(expected[1], again[1]) and torch.equal(expected[2], again[2])
