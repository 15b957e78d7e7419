"""Run the paper's ablation studies at small scale and write a report.

Every variant of a study is trained with the same seed, data and schedule on the synthetic pose and
segmentation sets (a small-scale stand-in for COCO and Cityscapes), evaluated, and listed beside the
paper's figures together with the params/GFLOPs of its full-scale counterpart (pose W32 at 256x192,
segmentation W48 at 1024x2048). The report says where the small-scale ranking agrees with the paper.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..engine.config import load_config
from ..engine.trainer import train
from ..io import write_json, write_text
from ..models.complexity import complexity
from ..models.registry import build_model
from .studies import STUDIES, Study, Variant

__all__ = ["run_study", "render_report", "combined_report", "reference_spread", "FULL_SCALE", "SMALL_CONFIGS"]

#: the small-scale training recipe of each task (a small HRNet on the synthetic set), packaged config names
SMALL_CONFIGS = {"pose": "ablations/small/pose", "segmentation": "ablations/small/segmentation"}
#: the paper's setting whose complexity each variant reports: (preset, input size)
FULL_SCALE = {"pose": ("pose_hrnet_w32", (256, 192)), "segmentation": ("seg_hrnetv2_w48", (1024, 2048))}
METRIC = {"pose": "AP", "segmentation": "mIoU"}
#: a run-to-run spread above this (a fraction, like the metrics) makes a task's small-scale ranking uninformative
NOISY_SPREAD = 0.10
SYNTH_TASK = {"pose": "pose", "segmentation": "seg"}


def _ensure_data(task: str, data_root: Path, seed: int, sizes: dict[str, int]) -> Path:
    from ..synthetic import synthesize

    root = data_root / task
    if not root.exists():
        synthesize(SYNTH_TASK[task], root, seed=seed, **sizes)
    return root


def _full_scale_complexity(task: str, variant: Variant) -> dict[str, float]:
    preset, size = FULL_SCALE[task]
    with torch.device("meta"):
        model = build_model(preset, **variant.options)
    c = complexity(model, size)
    return {"params_m": round(c.params_m, 2), "gflops": round(c.gflops, 2)}


def _override_args(options: dict[str, Any]) -> list[str]:
    return [f"model.overrides.{k}={json.dumps(v)}" for k, v in options.items()]


def run_variant(task: str, variant: Variant, out_dir: Path, data_root: Path, seed: int,
                epochs: int | None, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Train and evaluate one variant; return its metric, timings and complexity."""
    overrides = [*_override_args(variant.options), f"data.root={data_root}", f"output_dir={out_dir}",
                 f"seed={seed}", *extra]
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
    cfg = load_config(SMALL_CONFIGS[task], overrides)
    start = time.perf_counter()
    summary = train(cfg)
    metrics = summary.get("last_metrics") or {}
    return {"variant": variant.name, "options": variant.options, "metric": METRIC[task],
            "ours": float(metrics.get(METRIC[task], float("nan"))),
            "paper": variant.paper_pose_ap if task == "pose" else variant.paper_seg_miou,
            "reference": task in variant.reference_for,
            "full_scale": _full_scale_complexity(task, variant),
            "train_seconds": round(time.perf_counter() - start, 1)}


def run_study(study: Study | str, out_dir: str | Path, *, tasks: Sequence[str] | None = None, seed: int = 0,
              epochs: int | None = None, data_root: str | Path | None = None,
              extra: Sequence[str] = (), data_sizes: dict[str, int] | None = None) -> dict[str, Any]:
    """Run every variant of ``study`` for each of its tasks; write ``results.json`` and the report.

    ``extra`` are config overrides for every run; ``data_sizes`` (``num_train``, ``num_val``) size the
    synthetic sets generated under ``data_root`` when they do not exist yet.
    """
    study = STUDIES[study] if isinstance(study, str) else study
    out_dir = Path(out_dir)
    data_root = Path(data_root) if data_root else out_dir.parent / "data"
    results: dict[str, Any] = {"study": study.name, "title": study.title, "source": study.paper_source,
                               "seed": seed, "machine": _machine(), "tasks": {}}
    for task in tasks or study.tasks:
        if task not in study.tasks:
            continue
        root = _ensure_data(task, data_root, seed, data_sizes or {})
        rows = [run_variant(task, v, out_dir / task / _slug(v.name), root, seed, epochs, extra)
                for v in study.variants]
        results["tasks"][task] = rows
    write_json(out_dir / "results.json", results, indent=1)
    write_text(out_dir / "report.md", render_report(results, chart=out_dir / f"{study.name}.png"))
    return results


def _machine() -> dict[str, str]:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    return {"device": device, "torch": torch.__version__}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def _ranking_verdict(rows: list[dict[str, Any]], noise: float = 0.0) -> str:
    """Compare the order of variants by our metric with the paper's, over variants the paper reports.

    ``noise`` is the run-to-run spread of our metric (a fraction, like ``ours``): an ordering of two
    variants whose results differ by no more than it is reported as undecided."""
    pairs = [(r["ours"], r["paper"], r["variant"]) for r in rows if r["paper"] is not None]
    if len(pairs) < 2:
        return "The paper gives fewer than two figures here, so there is no ranking to compare."
    ours, paper = _ranking(pairs, 0), _ranking(pairs, 1)
    agree, disagree, tied = pairwise_agreement(rows)
    # equal results order nothing: a ranking with ties agrees only where it is decided
    verdict = "disagrees with" if disagree else "is undecided against" if tied else "agrees with"
    undecided = f", {tied} undecided (equal results)" if tied else ""
    text = (f"Small-scale ranking ({ours}) {verdict} the paper's ({paper}); "
            f"{agree} of {agree + disagree + tied} pairwise orderings agree{undecided}.")
    if noise > 0:
        firm, against, undecided = pairwise_agreement(rows, noise)
        text += (f" Beyond the run-to-run spread ({100 * noise:.1f} points): {firm} agree, {against} disagree, "
                 f"{undecided} undecided.")
    return text


def _ranking(pairs: list[tuple[float, float | None, str]], column: int) -> str:
    """Variants best first by ``column`` (0: ours, 1: the paper's), ``=`` between equal results."""
    ordered = sorted(pairs, key=lambda p: -p[column])
    text = ordered[0][2]
    for previous, current in zip(ordered, ordered[1:], strict=False):
        text += (" = " if current[column] == previous[column] else " > ") + current[2]
    return text


def reference_spread(studies_results: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Per task, the results of the published HRNet configuration wherever a study repeats it."""
    spread: dict[str, list[float]] = {}
    for results in studies_results:
        for task, rows in results["tasks"].items():
            spread.setdefault(task, []).extend(r["ours"] for r in rows if r.get("reference"))
    return spread


def render_report(results: dict[str, Any], chart: Path | None = None, noise: dict[str, float] | None = None) -> str:
    """Markdown for one study (and, if ``chart`` is given, a PNG bar chart beside it); ``noise`` maps a
    task to its run-to-run spread, which the ranking verdict takes into account."""
    machine = results.get("machine")
    where = f" Trained on {machine['device']} with torch {machine['torch']}." if machine else ""
    lines = [f"## {results['title']}", "",
             f"Paper: {results['source']}. Ours: small-scale runs on the synthetic sets (same seed "
             f"{results['seed']}, data and schedule for every variant) — **not** COCO/Cityscapes numbers; "
             "params/GFLOPs are those of the full-scale model (pose W32 at 256×192, segmentation W48 at "
             f"1024×2048).{where}", ""]
    for task, rows in results["tasks"].items():
        metric = rows[0]["metric"] if rows else ""
        lines += [f"### {task}", "",
                  f"| variant | options | params (M) | GFLOPs | ours {metric} (small-scale) | paper {metric} |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            opts = ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "—"
            paper = "—" if r["paper"] is None else f"{r['paper']:.1f}"
            lines.append(f"| {r['variant']} | {opts} | {r['full_scale']['params_m']:.2f} | "
                         f"{r['full_scale']['gflops']:.2f} | {100 * r['ours']:.1f} | {paper} |")
        lines += ["", _ranking_verdict(rows, (noise or {}).get(task, 0.0)), ""]
    if chart is not None and results["tasks"]:
        _bar_chart(results, chart)
        lines += [f"![{results['study']}]({chart.name})", ""]
    return "\n".join(lines)


def _bar_chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["tasks"].items())
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.6), squeeze=False)
    for ax, (task, rows) in zip(axes[0], tasks, strict=True):
        names = [r["variant"] for r in rows]
        x = range(len(rows))
        ours = [100 * r["ours"] for r in rows]
        paper = [r["paper"] if r["paper"] is not None else 0.0 for r in rows]
        ax.bar([i - 0.2 for i in x], ours, width=0.4, label="ours (small-scale)")
        ax.bar([i + 0.2 for i in x], paper, width=0.4, label="paper")
        ax.set_xticks(list(x), names, rotation=15, fontsize=8)
        ax.set_title(f"{task}: {rows[0]['metric']}")
        ax.legend(fontsize=8)
    fig.suptitle(results["title"], fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)


def combined_report(runs_dir: Path, studies: Sequence[str], assets: Path) -> str:
    """One Markdown document for several studies; their charts are copied under ``assets/ablations``."""
    import shutil

    all_results = [json.loads((Path(runs_dir) / name / "results.json").read_text()) for name in studies]
    spread = reference_spread(all_results)
    noise = {task: max(v) - min(v) for task, v in spread.items() if len(v) > 1}
    parts = [HEADER, _noise_section(spread), _summary_table(all_results, noise)]
    for name, results in zip(studies, all_results, strict=True):
        chart = Path(runs_dir) / name / f"{name}.png"
        target = Path(assets) / "assets" / "ablations" / chart.name
        if chart.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(chart, target)
        parts.append(render_report(results, noise=noise).rstrip())
        if chart.exists():
            parts.append(f"\n![{name}](assets/ablations/{chart.name})\n")
    return "\n\n".join(parts) + "\n"


def pairwise_agreement(rows: list[dict[str, Any]], noise: float = 0.0) -> tuple[int, int, int]:
    """(agree, disagree, undecided): orderings of two paper-reported variants whose small-scale results
    differ by more than ``noise`` and agree / disagree with the paper's, and those within ``noise``."""
    pairs = [(r["ours"], r["paper"]) for r in rows if r["paper"] is not None]
    couples = [(a, b) for i, a in enumerate(pairs) for b in pairs[i + 1:]]
    decided = [(a, b) for a, b in couples if abs(a[0] - b[0]) > noise]
    agree = sum((a[0] - b[0]) * (a[1] - b[1]) > 0 for a, b in decided)
    return agree, len(decided) - agree, len(couples) - len(decided)


def _summary_table(all_results: Sequence[dict[str, Any]], noise: dict[str, float]) -> str:
    lines = ["## Summary: does the small-scale ranking agree with the paper?", "",
             "Pairwise orderings of the variants the paper reports, counted where our two results differ by more "
             "than the run-to-run spread (agree / disagree) and where they do not (undecided).", "",
             "| study | task | agree | disagree | undecided |", "|---|---|---|---|---|"]
    for results in all_results:
        for task, rows in results["tasks"].items():
            agree, disagree, undecided = pairwise_agreement(rows, noise.get(task, 0.0))
            lines.append(f"| {results['study']} | {task} | {agree} | {disagree} | {undecided} |")
    return "\n".join(lines)


def _noise_section(spread: dict[str, list[float]]) -> str:
    lines = ["## Run-to-run spread", "",
             "The published HRNet configuration is a variant of several studies (fusion within stages, "
             "progressive resolution, strided-conv + sum fusion, the V1 head for pose and 1× branch, the V2 head "
             "for segmentation), so each report trains it several times with the same seed, data and schedule. "
             "Its results differ only by nondeterministic kernels, and their spread is the noise floor of "
             "these small-scale runs: a difference smaller than it says nothing about the variants.", ""]
    for task, values in spread.items():
        if len(values) > 1:
            metric = "AP" if task == "pose" else "mIoU"
            lines.append(f"- {task}: {metric} of the same configuration in {len(values)} runs: "
                         + ", ".join(f"{100 * v:.1f}" for v in values)
                         + f" (spread {100 * (max(values) - min(values)):.1f} points)."
                         + (" At this scale that is as large as most differences between the variants, so this "
                            "task's small-scale results cannot rank them; only orderings beyond the spread count."
                            if max(values) - min(values) > NOISY_SPREAD else ""))
    return "\n".join(lines)


HEADER = """# Ablation studies

The paper's ablations (TPAMI Sec. 4.5: Table 12, Figs. 9-10 and the text) as runnable experiments.
Every variant is an option of `hrnet.build_model` (`fusion`, `resolution`, `branch`, `representation`,
`downsample`, `fuse_method`), so the same knobs serve the full-scale configs in `configs/ablations/`.

**Small scale.** The numbers below come from `hrnet ablate all --report docs/ablations.md` (or one
`hrnet ablate STUDY` per study, side by side, then `hrnet ablate all --report-only --report docs/ablations.md`):
each variant is a small HRNet (the recipes of `configs/ablations/small/`) trained for 20 epochs on the synthetic
pose / segmentation sets (same seed, data and schedule), so they are *not* COCO AP or Cityscapes mIoU, and
differences within the run-to-run spread below are noise.
Params and GFLOPs are those of the full-scale variant (pose W32 at 256×192, segmentation W48 at
1024×2048). Reproduce the paper's setting with the full-scale configs, e.g.
`hrnet train configs/ablations/fusion/pose_final.yaml` (COCO, W32, 256×192, from scratch)."""
