"""Shared driver of the ``*_synthetic_train.py`` benchmarks: generate a synthetic set, train one config on it
with the engine (``hrnet train``), and time it in CPU seconds, the budget the benchmarks state."""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch

from hrnet.data import synthesize
from hrnet.engine.config import ExperimentConfig, load_config
from hrnet.engine.trainer import train

REPO = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the DataLoader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def parse_args(doc: str, name: str, config: Path, threads: int = 1,
               sizes: dict[str, int] | None = None, flags: dict[str, str] | None = None) -> argparse.Namespace:
    """The benchmarks' common options; ``sizes`` (``num_train``, ``num_val``) become ``--num-train/--num-val``,
    ``flags`` (name: help) yes/no options of the generator (e.g. ``stuff_maps`` -> ``--stuff-maps``)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=threads, help=f"torch CPU threads (default {threads})")
    parser.add_argument("--config", type=Path, default=config)
    parser.add_argument("--data", type=Path, default=REPO / "runs" / f"bench_{name}" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / f"bench_{name}" / "train")
    for key, value in (sizes or {}).items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=value)
    for key, text in (flags or {}).items():
        parser.add_argument(f"--{key.replace('_', '-')}", action="store_true", help=text)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.epochs=30")
    args = parser.parse_args()
    args.synth_options = {key: getattr(args, key) for key in sizes or {}}
    args.synth_options.update({key: True for key in flags or {} if getattr(args, key)})
    return args


def train_on_synthetic(args: argparse.Namespace, synth_task: str) -> tuple[ExperimentConfig, dict[str, Any], float]:
    """Generate the set (unless it is there), train ``args.config`` on it; ``(config, summary, CPU seconds)``.

    Exits with status 2 when ``args.out`` holds an earlier run (training would resume it, not start over)."""
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    synthesize(synth_task, args.data, seed=0, **args.synth_options)
    print(f"data: {args.data} ({time.perf_counter() - start:.1f} s)")
    cfg = load_config(args.config, [f"data.root={args.data}", f"output_dir={args.out}", *args.overrides])
    if args.out.exists():
        sys.exit(f"{args.out} exists from an earlier run; remove it first")
    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    summary = train(cfg)
    cpu, wall = cpu_seconds() - cpu_start, time.perf_counter() - wall_start
    print(f"model: {cfg.model.name} {cfg.model.overrides}, {cfg.train.epochs} epochs, {summary['steps']} steps")
    print(f"training time: {cpu:.0f} s CPU (process + loader workers, {args.threads} threads), {wall:.0f} s wall")
    return cfg, summary, cpu
