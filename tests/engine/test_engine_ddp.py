"""Two processes (torchrun, gloo on CPU) train to the weights of one process with the same global batch."""

import pytest
import torch
from engine_testutils import model_state, run_hrnet, toy_config, write_config

from hrnet.engine.checkpoint import load_checkpoint
from hrnet.engine.config import validate_config
from hrnet.engine.metrics_log import read_metrics
from hrnet.engine.trainer import train


def ddp_config(tmp_path, output_dir, batch_size):
    return toy_config(
        tmp_path,
        data={"root": str(tmp_path / "toy_data"), "num_train": 32, "num_val": 10},
        train={
            "epochs": 2,
            "batch_size": batch_size,
            "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
            "log_every": 2,
        },
        output_dir=str(output_dir),
    )


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    single = train(validate_config(ddp_config(tmp_path, tmp_path / "single", batch_size=8)))
    assert single["steps"] == 8  # 32 samples / 8 per step x 2 epochs

    config = write_config(tmp_path / "ddp.yaml", ddp_config(tmp_path, tmp_path / "ddp", batch_size=4))
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    result = run_hrnet(["train", str(config)], launcher=launcher, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Training done: 8 steps") == 1  # only rank 0 reports

    expected = model_state(tmp_path / "single" / "checkpoints" / "last.pt")
    got = model_state(tmp_path / "ddp" / "checkpoints" / "last.pt")
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=0)
    # validation is split over the processes and gathered: every sample counted once, same numbers
    ddp_val = [r for r in read_metrics(tmp_path / "ddp" / "metrics.jsonl") if r["kind"] == "val"]
    single_val = [r for r in read_metrics(tmp_path / "single" / "metrics.jsonl") if r["kind"] == "val"]
    assert [r["count"] for r in ddp_val] == [10.0, 10.0]
    for a, b in zip(ddp_val, single_val, strict=True):
        assert abs(a["score"] - b["score"]) < 1e-5
    # the training loss logged is the mean over both processes
    ddp_loss = [r["loss"] for r in read_metrics(tmp_path / "ddp" / "metrics.jsonl") if r["kind"] == "train"]
    single_loss = [r["loss"] for r in read_metrics(tmp_path / "single" / "metrics.jsonl") if r["kind"] == "train"]
    torch.testing.assert_close(torch.tensor(ddp_loss), torch.tensor(single_loss), atol=1e-5, rtol=0)



def sync_bn_config(tmp_path, output_dir, batch_size):
    """A tiny float64 HRNet (BatchNorm everywhere) on 32 images: 4 steps x 5 epochs, SGD with momentum."""
    return toy_config(
        tmp_path,
        model={"name": "hrnet", "overrides": {}},
        data={"root": str(tmp_path / "toy_data"), "num_train": 32, "num_val": 8, "image_size": 32},
        train={
            "epochs": 5,
            "batch_size": batch_size,
            "sync_bn": True,
            "eval_every": 0,
            "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
            "log_every": 4,
        },
        output_dir=str(output_dir),
    )


@pytest.mark.slow
def test_two_process_hrnet_with_sync_bn_matches_one_process_with_the_same_global_batch(tmp_path):
    single = train(validate_config(sync_bn_config(tmp_path, tmp_path / "single", batch_size=8)))
    assert single["steps"] == 20

    config = write_config(tmp_path / "ddp.yaml", sync_bn_config(tmp_path, tmp_path / "ddp", batch_size=4))
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    result = run_hrnet(["train", str(config)], launcher=launcher, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    expected = model_state(tmp_path / "single" / "checkpoints" / "last.pt")
    got = model_state(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert any(k.endswith("running_var") for k in expected)  # BatchNorm statistics are compared too
    diffs = {k: (got[k].double() - expected[k].double()).abs().max().item() for k in expected}
    worst = max(diffs, key=diffs.get)
    print(f"SyncBN parity after 20 steps: max |2 processes - 1 process| = {diffs[worst]:.1e} ({worst})")
    assert diffs[worst] < 1e-5, (worst, diffs[worst])


@pytest.mark.slow
def test_a_signal_to_one_process_stops_every_process_at_the_same_step_with_a_checkpoint(tmp_path):
    train(validate_config(ddp_config(tmp_path, tmp_path / "single", batch_size=8)))
    raw = ddp_config(tmp_path, tmp_path / "ddp", batch_size=4)
    raw["train"]["checkpoint_every_iters"] = 0  # only the stop writes one mid-epoch
    config = write_config(tmp_path / "ddp.yaml", raw)
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    # only process 1 gets SIGTERM, during its 3rd step
    stopped = run_hrnet(["train", str(config), "data.signal_at_call=3", "data.signal_rank=1"], launcher=launcher,
                        timeout=180)
    assert stopped.returncode != 0
    message = "stopped by SIGTERM: saved a resumable checkpoint at epoch 1, iteration 3 (step 3)"
    assert f"[rank 1] hrnet train: {message}" in stopped.stderr and f"\nhrnet train: {message}" in stopped.stderr
    assert "exitcode  : 143" in stopped.stderr  # torchrun's report of the worker that failed first
    state = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert (state["epoch"], state["iter_in_epoch"], state["global_iter"], len(state["rng"])) == (0, 3, 3, 2)

    resumed = run_hrnet(["train", str(config), "--resume"], launcher=launcher, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = model_state(tmp_path / "single" / "checkpoints" / "last.pt")
    got = model_state(tmp_path / "ddp" / "checkpoints" / "last.pt")
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=0)
