"""The training curves plot every evaluation as a marked point."""

from __future__ import annotations

import math

from hrnet.engine.metrics_log import curves_figure, plot_curves


def _records(evals: list[float]) -> list[dict]:
    records = [{"kind": "train", "step": 10 * i, "epoch": i // 3 + 1, "loss": 1.0 / (i + 1)} for i in range(12)]
    records += [{"kind": "val", "step": 30 * (e + 1), "epoch": e + 1, "AP": ap} for e, ap in enumerate(evals)]
    return records


def test_every_evaluation_is_a_marked_point(tmp_path):
    evals = [0.12, 0.31, 0.29, 0.44]
    fig = curves_figure(_records(evals), "AP")
    metric_ax = fig.axes[1]
    line = metric_ax.lines[0]
    assert line.get_marker() == "o"
    assert list(line.get_xdata()) == [1, 2, 3, 4] and list(line.get_ydata()) == evals
    best = metric_ax.lines[1]  # the best evaluation, ringed
    assert list(best.get_xdata()) == [4] and list(best.get_ydata()) == [0.44]
    assert "best 0.44" in [text.get_text() for text in metric_ax.get_legend().get_texts()]
    assert plot_curves(_records(evals), tmp_path / "curves.png", "AP").read_bytes()[:4] == b"\x89PNG"


def test_a_single_evaluation_still_shows():
    fig = curves_figure(_records([0.5]), "AP")
    line = fig.axes[1].lines[0]
    assert line.get_marker() == "o" and list(line.get_ydata()) == [0.5]


def test_no_evaluation_no_metric_points():
    fig = curves_figure(_records([]) + [{"kind": "val", "epoch": 1, "AP": math.nan}], "AP")
    assert len(fig.axes[1].lines) == 1 and len(fig.axes[1].lines[0].get_xdata()) == 0
