import json
import math

import pytest
import torch
from engine_testutils import model_state, toy_config

from hrnet.engine.checkpoint import load_checkpoint
from hrnet.engine.config import validate_config
from hrnet.engine.inference import evaluate, predict
from hrnet.engine.metrics_log import curves_figure, read_metrics
from hrnet.engine.trainer import train
from hrnet.errors import ConfigError, DataError, HRNetError


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One short run whose outputs several tests inspect."""
    tmp_path = tmp_path_factory.mktemp("finished")
    raw = toy_config(tmp_path, train={"epochs": 3, "checkpoint_every": 2, "schedule": {"name": "cosine"}})
    cfg = validate_config(raw)
    return cfg, train(cfg)


def test_run_writes_config_checkpoints_logs_and_plot(finished_run):
    cfg, summary = finished_run
    out = cfg.output_dir
    assert summary["steps"] == 30 and summary["epochs"] == 3
    assert (out / "config.yaml").is_file()
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"last.pt", "best.pt", "epoch_0002.pt"}
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((out / "eval" / "predictions.json").read_text())[0]["index"] == 0

    records = read_metrics(out / "metrics.jsonl")
    train_records = [r for r in records if r["kind"] == "train"]
    val_records = [r for r in records if r["kind"] == "val"]
    assert [r["epoch"] for r in val_records] == [1, 2, 3]
    assert all({"loss", "lr", "samples_per_s", "mae"} <= r.keys() for r in train_records)
    assert train_records[-1]["step"] == 30
    # best.pt holds the best validation score, and the summary says so
    best = load_checkpoint(out / "checkpoints" / "best.pt")
    scores = [r["score"] for r in val_records]
    assert best["best_metric"] == summary["best_metric"] == max(scores)
    assert best["best_epoch"] == summary["best_epoch"] == 1 + scores.index(max(scores))
    # the curves mark every evaluation of the run
    metric_line = curves_figure(records, "score").axes[1].lines[0]
    assert metric_line.get_marker() == "o" and list(metric_line.get_ydata()) == scores
    assert "optimizer" not in best  # the model only
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    assert (last["epoch"], last["iter_in_epoch"], last["global_iter"]) == (3, 0, 30)


def test_same_seed_same_weights_other_seed_other_weights(finished_run, tmp_path):
    cfg, _ = finished_run
    again = cfg.model_copy(update={"output_dir": tmp_path / "again"})
    train(again)
    first = model_state(cfg.output_dir / "checkpoints" / "last.pt")
    second = model_state(tmp_path / "again" / "checkpoints" / "last.pt")
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = cfg.model_copy(update={"output_dir": tmp_path / "other", "seed": 8})
    train(other)
    third = model_state(tmp_path / "other" / "checkpoints" / "last.pt")
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_existing_run_needs_resume_and_a_finished_run_resumes_to_its_summary(finished_run):
    cfg, summary = finished_run
    with pytest.raises(ConfigError, match="already holds a training run.*--resume"):
        train(cfg)
    resumed = train(cfg, resume=True)
    assert resumed["steps"] == summary["steps"] and resumed["best_metric"] == summary["best_metric"]


def test_resume_from_best_is_refused(finished_run, tmp_path):
    cfg, _ = finished_run
    other = cfg.model_copy(update={"output_dir": tmp_path / "x"})
    with pytest.raises(HRNetError, match="holds no optimizer state"):
        train(other, resume_from=cfg.output_dir / "checkpoints" / "best.pt")


def test_evaluate_and_predict_with_trained_weights(finished_run, tmp_path):
    cfg, summary = finished_run
    metrics = evaluate(cfg, summary["best_checkpoint"], tmp_path / "eval")
    assert metrics["score"] == pytest.approx(summary["best_metric"])
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == metrics
    assert (tmp_path / "eval" / "config.yaml").is_file()
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps([[0.1, 0.2, 0.3, 0.4]]))
    written = predict(cfg, summary["best_checkpoint"], [sample], tmp_path / "pred", scale=2.0)
    assert written == [tmp_path / "pred" / "sample.pred.json"]
    assert len(json.loads(written[0].read_text())[0]) == 2


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    raw = toy_config(tmp_path, data={"root": str(tmp_path / "toy_data"), "nan_at_call": 7})
    raw["train"]["checkpoint_every_iters"] = 5
    with pytest.raises(HRNetError, match=r"loss is nan at epoch 1, iteration 7 \(step 7\).*last good checkpoint"):
        train(validate_config(raw))
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["global_iter"] == 5
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_missing_dataset_is_a_data_error(tmp_path):
    raw = toy_config(tmp_path, data={"root": str(tmp_path / "nowhere")})
    with pytest.raises(DataError, match="nowhere does not exist"):
        train(validate_config(raw))


def test_too_few_samples_for_one_batch(tmp_path):
    raw = toy_config(tmp_path, data={"root": str(tmp_path / "toy_data"), "num_train": 3})
    with pytest.raises(DataError, match="3 samples, fewer than one batch"):
        train(validate_config(raw))


def test_bf16_autocast_and_gradient_clipping_train(tmp_path):
    raw = toy_config(tmp_path, train={"epochs": 1, "amp": True, "grad_clip": 0.01, "eval_every": 0})
    summary = train(validate_config(raw))
    assert summary["best_checkpoint"] is None  # no validation, no best
    losses = [r["loss"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert losses and all(math.isfinite(v) for v in losses)


def test_init_from_loads_weights_before_training(finished_run, tmp_path):
    cfg, summary = finished_run
    raw = toy_config(tmp_path, train={"epochs": 1, "optimizer": {"name": "sgd", "lr": 1e-12, "momentum": 0}})
    raw["model"]["init_from"] = summary["last_checkpoint"]
    train(validate_config(raw))
    start = model_state(cfg.output_dir / "checkpoints" / "last.pt")
    end = model_state(tmp_path / "run" / "checkpoints" / "last.pt")
    assert all(torch.allclose(start[k], end[k], atol=1e-6) for k in start)
