"""Faults an operator meets: two runs on one folder, signals, stale temporary files, a full disk,
weights that diverge, and a restart before the first checkpoint."""

import errno
import json
import signal
import time

import pytest
import torch
from engine_testutils import model_state, run_hrnet, start_hrnet, toy_config, write_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hrnet.cli.main import main as hrnet_main
from hrnet.engine.build import build_task
from hrnet.engine.checkpoint import load_checkpoint
from hrnet.engine.config import validate_config
from hrnet.engine.metrics_log import read_metrics
from hrnet.engine.trainer import train
from hrnet.errors import CheckpointError, ConfigError, HRNetError
from hrnet.models.weights import save_weights


def wait_for(condition, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def stop_config(tmp_path, output_dir, **data):
    """3 epochs of 10 iterations, random in every step (dropout), checkpoints every 4 iterations."""
    return toy_config(
        tmp_path,
        model={"name": "mlp", "overrides": {"dropout": 0.3}},
        data={"root": str(tmp_path / "toy_data"), **data},
        train={"epochs": 3, "checkpoint_every_iters": 4, "schedule": {"name": "poly", "per": "iter"}},
        output_dir=str(output_dir),
    )


def assert_same_weights(expected_checkpoint, got_checkpoint):
    expected, got = model_state(expected_checkpoint), model_state(got_checkpoint)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


# ---------------------------------------------------------------------------------------------- lock


def test_a_second_run_on_a_busy_output_dir_is_refused_naming_the_holder(tmp_path):
    pause = tmp_path / "pause"
    pause.touch()
    config = write_config(tmp_path / "toy.yaml", toy_config(tmp_path, data={"pause_file": str(pause)}))
    first = start_hrnet(["train", str(config)])
    try:
        wait_for(lambda: (tmp_path / "run" / "config.yaml").exists() or first.poll() is not None)
        record = json.loads((tmp_path / "run" / "run.lock").read_text())
        again = run_hrnet(["train", str(config), "data.pause_file=null"])
        resumed = run_hrnet(["train", str(config), "data.pause_file=null", "--resume"])
    finally:
        pause.unlink()
        _, first_stderr = first.communicate(timeout=120)
    assert first.returncode == 0, first_stderr
    assert record["pid"] == first.pid and record["host"] and "train" in record["command"]
    for refused in (again, resumed):
        assert refused.returncode == 2, refused.stderr
        message = refused.stderr.strip()
        assert "\n" not in message, message  # one paragraph
        assert "is in use by another training run" in message
        assert f"process {first.pid} on host" in message and "run.lock" in message
    # the refused runs wrote nothing: the log is the first run's alone
    steps = [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == sorted(set(steps))


def test_a_killed_run_leaves_no_lock_and_its_temp_files_are_removed(tmp_path):
    config = write_config(tmp_path / "toy.yaml", stop_config(tmp_path, tmp_path / "run"))
    killed = run_hrnet(["train", str(config), "data.kill_at_call=7"])
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # what a kill -9 in the middle of atomic writes leaves behind
    run = tmp_path / "run"
    stale = [run / "checkpoints" / ".last.pt.k2j4h5g6.tmp", run / ".metrics.jsonl.x_9abcde.tmp"]
    for path in stale:
        path.write_bytes(b"PK\x03\x04 partial")
    resumed = run_hrnet(["train", str(config), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert "removed the stale lock of a run that ended without releasing it" in resumed.stderr
    assert "removed 2 temporary file(s) of interrupted writes" in resumed.stderr
    assert not any(path.exists() for path in stale)
    assert list((tmp_path / "run").rglob("*.tmp")) == []
    assert (tmp_path / "run" / "run.lock").read_text() == ""  # released


# ------------------------------------------------------------------------------------------- signals


@pytest.mark.parametrize(("name", "exit_code", "workers"), [("SIGTERM", 143, 0), ("SIGINT", 130, 2)])
def test_a_signal_saves_a_resumable_checkpoint_and_exits_128_plus_its_number(tmp_path, name, exit_code, workers):
    reference = stop_config(tmp_path, tmp_path / "reference")
    reference["train"]["workers"] = workers
    train(validate_config(reference))

    raw = stop_config(tmp_path, tmp_path / "stopped")
    raw["train"]["workers"] = workers
    config = write_config(tmp_path / "toy.yaml", raw)
    # the signal arrives during step 13 (epoch 2, iteration 3), between the checkpoints of steps 12 and 14
    stopped = run_hrnet(["train", str(config), "data.signal_at_call=13", f"data.signal_name={name}"])
    assert stopped.returncode == exit_code, stopped.stderr
    last = tmp_path / "stopped" / "checkpoints" / "last.pt"
    assert f"stopped by {name}: saved a resumable checkpoint at epoch 2, iteration 3 (step 13) to {last}" in (
        stopped.stderr
    )
    state = load_checkpoint(last)
    assert (state["epoch"], state["iter_in_epoch"], state["global_iter"]) == (1, 3, 13)

    resumed = run_hrnet(["train", str(config), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(tmp_path / "reference" / "checkpoints" / "last.pt", last)


# ----------------------------------------------------------------------------------------- full disk


def test_a_full_disk_is_one_paragraph_exit_2_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path / "toy.yaml", stop_config(tmp_path, tmp_path / "run"))
    real_save, saves = torch.save, []

    class FullDisk:
        """A file on a disk that fills up after a few bytes."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self):
            pass

    def save_until_the_disk_is_full(obj, f, *args, **kwargs):
        saves.append(obj["global_iter"])
        return real_save(obj, f if len(saves) < 3 else FullDisk(f), *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_is_full)
    assert hrnet_main(["train", str(config)]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("hrnet train: error: training stopped: the disk holding")
    assert "is full while writing" in message and "last.pt (step 8)" in message and "--resume" in message
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["global_iter"] == 8
    assert list((tmp_path / "run").rglob("*.tmp")) == []


# --------------------------------------------------------------------------------------- divergence


def test_non_finite_weights_are_never_saved_and_the_stop_names_the_last_finite_checkpoint(tmp_path):
    raw = toy_config(tmp_path, data={"root": str(tmp_path / "toy_data"), "nan_grad_at_call": 6})
    raw["train"].update(checkpoint_every_iters=1, optimizer={"name": "sgd", "lr": 0.01})
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    with pytest.raises(HRNetError, match=rf"after step 6 .*NaN or Inf.*{last} \(step 5\), holds finite weights"):
        train(validate_config(raw))
    state = load_checkpoint(last)
    assert state["global_iter"] == 5
    assert all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_infinite_or_nan_numbers_in_the_config_are_refused(tmp_path, value):
    for key, section in (("lr", "optimizer"), ("grad_clip", None)):
        raw = toy_config(tmp_path)
        target = raw["train"] if section is None else raw["train"].setdefault(section, {})
        target[key] = float(value.replace(".", ""))
        with pytest.raises(ConfigError, match=key):
            validate_config(raw)


# ---------------------------------------------------------------------------------------- restarts


def tensorboard_steps(output_dir):
    steps = []
    for events in sorted((output_dir / "tensorboard").glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        steps += [event.step for event in accumulator.Scalars("train/loss")]
    return steps


def test_a_restart_before_the_first_checkpoint_starts_fresh_logs(tmp_path):
    reference = toy_config(tmp_path, output_dir=str(tmp_path / "reference"))
    train(validate_config(reference))
    config = write_config(tmp_path / "toy.yaml", toy_config(tmp_path, train={"checkpoint_every_iters": 0}))
    killed = run_hrnet(["train", str(config), "data.kill_at_call=8"])  # after records at steps 3 and 6
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    restarted = run_hrnet(["train", str(config), "--resume"])
    assert restarted.returncode == 0, restarted.stderr

    def records(output_dir):
        return [{k: v for k, v in r.items() if k not in ("time", "samples_per_s")}
                for r in read_metrics(output_dir / "metrics.jsonl")]

    assert records(tmp_path / "run") == records(tmp_path / "reference")
    assert tensorboard_steps(tmp_path / "run") == tensorboard_steps(tmp_path / "reference") == [3, 6, 9, 10, 12, 15,
                                                                                               18, 20]
    assert len(list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))) == 1


def test_init_from_weights_stored_as_integers_are_refused(tmp_path):
    raw = toy_config(tmp_path)
    model = build_task(validate_config(raw)).build_model()
    path = save_weights({k: v.to(torch.int32) for k, v in model.state_dict().items()}, tmp_path / "int.safetensors")
    raw["model"]["init_from"] = str(path)
    with pytest.raises(CheckpointError, match=r"as integers or booleans: 0.weight \(torch.int32\), 0.bias"):
        train(validate_config(raw))


@pytest.mark.parametrize(
    ("key", "value"), [("width", -8), ("width", 0), ("num_classes", 2.5), ("head_channels", [4, -1])]
)
def test_model_sizes_must_be_positive_integers(tmp_path, key, value):
    raw = toy_config(tmp_path, model={"name": "mlp", "overrides": {key: value}})
    with pytest.raises(ConfigError, match=rf"model.overrides: {key} is a size and must be a positive integer"):
        validate_config(raw)
