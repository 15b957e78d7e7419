"""A run killed with SIGKILL mid-epoch and resumed ends with exactly the weights of an uninterrupted run."""

import signal

import torch
from engine_testutils import model_state, run_hrnet, toy_config, write_config

from hrnet.engine.checkpoint import load_checkpoint
from hrnet.engine.config import validate_config
from hrnet.engine.metrics_log import read_metrics
from hrnet.engine.trainer import train


def resume_config(tmp_path, output_dir):
    return toy_config(
        tmp_path,
        model={"name": "mlp", "overrides": {"dropout": 0.3}},  # uses torch's global RNG in every step
        train={
            "epochs": 3,
            "workers": 2,
            "checkpoint_every_iters": 4,
            "grad_clip": 1.0,
            "schedule": {"name": "poly", "per": "iter", "warmup_iters": 5},
        },
        output_dir=str(output_dir),
    )


def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path):
    reference = train(validate_config(resume_config(tmp_path, tmp_path / "reference")))
    assert reference["steps"] == 30  # 3 epochs x 10 iterations

    config = write_config(tmp_path / "toy.yaml", resume_config(tmp_path, tmp_path / "killed"))
    # the 19th step of 30 is in epoch 2; the last checkpoint before it was written after step 16
    killed = run_hrnet(["train", str(config), "data.kill_at_call=19"])
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    assert (state["epoch"], state["iter_in_epoch"], state["global_iter"]) == (1, 6, 16)

    resumed = run_hrnet(["train", str(config), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming from" in resumed.stderr and "epoch 2, iteration 6" in resumed.stderr

    expected = model_state(tmp_path / "reference" / "checkpoints" / "last.pt")
    got = model_state(last)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    # the metrics log reads as one uninterrupted run
    val = [(r["epoch"], r["score"]) for r in read_metrics(tmp_path / "killed" / "metrics.jsonl") if r["kind"] == "val"]
    ref = [
        (r["epoch"], r["score"]) for r in read_metrics(tmp_path / "reference" / "metrics.jsonl") if r["kind"] == "val"
    ]
    assert val == ref and len(val) == 3
    # train records average the same iterations as the uninterrupted run's, also the first one after
    # the resume point (step 18: steps 16-18, of which step 16 was done before the kill)
    def train_records(run):
        return [(r["step"], r["loss"], r["mae"]) for r in read_metrics(tmp_path / run / "metrics.jsonl")
                if r["kind"] == "train"]

    assert train_records("killed") == train_records("reference")
    assert [step for step, _, _ in train_records("reference")][:7] == [3, 6, 9, 10, 12, 15, 18]
