"""Training feedback on disk: a JSONL metrics log, TensorBoard event files and a curve plot.

``metrics.jsonl`` holds one JSON object per line::

    {"kind": "train", "step": 120, "epoch": 2, "loss": 0.0012, "lr": 0.001, "samples_per_s": 85.1, ...}
    {"kind": "val", "step": 150, "epoch": 2, "AP": 0.61, ...}

``step`` is the number of optimizer steps done. A line is appended per record, so a killed run can
leave a torn last line; :func:`read_metrics` skips it, and a resumed run first drops every record
after the step it resumes from (TensorBoard's too), so the log reads as one uninterrupted run. A run
that starts afresh (none to resume, e.g. killed before its first checkpoint) empties both logs.
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..io import atomic_write, write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MetricsLogger", "read_metrics", "curves_figure", "plot_curves"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (an unreadable line, e.g. torn by a crash, is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class MetricsLogger:
    """Writes records to ``<output_dir>/metrics.jsonl`` and ``<output_dir>/tensorboard/``.

    ``resume_step``: continuing a run from that step; later records of the killed run are dropped
    (from TensorBoard too, through ``purge_step``).
    """

    def __init__(self, output_dir: str | Path, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(output_dir) / "metrics.jsonl"
        if resume_step is not None:
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
            write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        else:
            write_text(self.path, "")
            for events in (Path(output_dir) / "tensorboard").glob("events.out.tfevents.*"):
                events.unlink()  # a fresh start: the event files of an earlier attempt would repeat steps
        purge_step = None if resume_step is None else resume_step + 1  # TensorBoard drops steps >= this
        self.tensorboard = SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"), purge_step=purge_step)

    def log(self, kind: str, step: int, epoch: int, values: dict[str, float]) -> None:
        record = {"kind": kind, "step": step, "epoch": epoch, **values, "time": round(time.time(), 3)}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in values.items():
            if isinstance(value, (int, float)):
                self.tensorboard.add_scalar(f"{kind}/{name}", value, step)
        self.tensorboard.flush()

    def close(self) -> None:
        self.tensorboard.close()


def _finite_series(records: list[dict[str, Any]], kind: str, key: str, x_key: str) -> tuple[list, list]:
    xs, ys = [], []
    for record in records:
        value = record.get(key)
        if record.get("kind") == kind and isinstance(value, (int, float)) and math.isfinite(value):
            xs.append(record[x_key])
            ys.append(value)
    return xs, ys


def curves_figure(records: list[dict[str, Any]], main_metric: str) -> Figure:
    """The figure of :func:`plot_curves`: training loss over steps (left) and the validation ``main_metric``
    over epochs (right), every evaluation a marked point and the best one ringed and labelled."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

    fig = Figure(figsize=(10, 4))
    loss_ax, metric_ax = fig.subplots(1, 2)
    steps, losses = _finite_series(records, "train", "loss", "step")
    loss_ax.plot(steps, losses, color="tab:blue")
    loss_ax.set(title="training loss", xlabel="step", ylabel="loss")
    if losses and min(losses) > 0:
        loss_ax.set_yscale("log")
    epochs, values = _finite_series(records, "val", main_metric, "epoch")
    metric_ax.plot(epochs, values, marker="o", markersize=5, color="tab:orange", label=main_metric)
    if values:
        best = max(range(len(values)), key=values.__getitem__)
        metric_ax.plot([epochs[best]], [values[best]], linestyle="none", marker="o", markersize=11,
                       markerfacecolor="none", markeredgecolor="tab:red", label=f"best {values[best]:.4g}")
        metric_ax.legend(loc="best")
    metric_ax.set(title=f"validation {main_metric}", xlabel="epoch", ylabel=main_metric)
    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_curves(records: list[dict[str, Any]], path: str | Path, main_metric: str) -> Path:
    """A PNG with the training loss over steps and the validation ``main_metric`` over epochs
    (:func:`curves_figure`)."""
    buffer = io.BytesIO()
    curves_figure(records, main_metric).savefig(buffer, format="png", dpi=100)
    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getvalue())
    return path
