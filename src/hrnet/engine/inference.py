"""Evaluation and prediction with trained weights, outside the training loop.

Both run on one process or under ``torchrun`` (each process evaluates its share of the split; the task
gathers the results and rank 0 writes them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import HRNetError
from ..io import write_json
from ..models.context import inference_context
from .build import build_model, build_task, resolve_device
from .config import ExperimentConfig, save_config
from .data import DeviceLoader, build_eval_loader
from .distributed import cleanup_distributed, init_distributed
from .task import Task

__all__ = ["evaluate", "predict", "prepare_model", "run_evaluation"]


def prepare_model(cfg: ExperimentConfig, weights: str | Path | None, device: torch.device) -> tuple[Task, nn.Module]:
    """The task and its model with ``weights`` loaded, on ``device``, in eval mode."""
    task = build_task(cfg)
    model = build_model(task, cfg, weights).to(device).eval()
    return task, model


def run_evaluation(task: Task, model: nn.Module, loader: Iterable[Any], out_dir: str | Path) -> dict[str, float]:
    """``task.evaluate`` as the task contract promises it: the model in eval mode without gradients (its mode
    restored afterwards), every batch already on the model's device; the metrics as floats."""
    device = next(model.parameters()).device
    with inference_context(model):
        metrics = task.evaluate(model, DeviceLoader(loader, device), Path(out_dir))
    return {name: float(value) for name, value in metrics.items()}


def evaluate(cfg: ExperimentConfig, weights: str | Path | None, out_dir: str | Path | None = None,
             wrap_model: Callable[[Task, nn.Module], nn.Module] | None = None) -> dict[str, float]:
    """Evaluate ``weights`` on the config's val split; the task writes its predictions under ``out_dir``
    (default ``<output_dir>/eval``) and rank 0 writes ``metrics.json`` and the resolved ``config.yaml``
    there. ``wrap_model(task, model)`` may replace the model evaluated (e.g. by a deployed form of it).
    Returns the metrics."""
    out_dir = Path(out_dir) if out_dir is not None else Path(cfg.output_dir) / "eval"
    try:
        dist_info = init_distributed(resolve_device(cfg.device).type)
        device = resolve_device(cfg.device, dist_info.local_rank)
        task, model = prepare_model(cfg, weights, device)
        if wrap_model is not None:
            model = wrap_model(task, model)
        loader = build_eval_loader(
            task.build_dataset("val"),
            batch_size=cfg.eval.batch_size or cfg.train.batch_size,
            workers=cfg.train.workers if cfg.eval.workers is None else cfg.eval.workers,
            dist_info=dist_info,
            collate_fn=task.collate_fn(),
            pin_memory=device.type == "cuda",
        )
        metrics = run_evaluation(task, model, loader, out_dir)
        if dist_info.is_main:
            write_json(out_dir / "metrics.json", metrics, indent=2)
            save_config(cfg, out_dir / "config.yaml")
        return metrics
    finally:
        cleanup_distributed()


def predict(
    cfg: ExperimentConfig,
    weights: str | Path | None,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    **options: Any,
) -> list[Path]:
    """Run the task's ``predict`` on user inputs (images, folders, videos; the task says which, and
    raises ``DataError`` naming any it cannot read); returns the files written."""
    task, model = prepare_model(cfg, weights, resolve_device(cfg.device))
    try:
        with inference_context(model):
            return task.predict(model, [Path(p) for p in inputs], Path(out_dir), **options)
    except NotImplementedError as e:
        raise HRNetError(str(e)) from None
