"""Train a small HRNet pose model on the synthetic stick-figure set and report the CPU time it took.

    python benchmarks/pose_synthetic_train.py [--threads 2] [--data DIR] [--out DIR] [key.sub=value ...]

Generates the synthetic pose set (COCO keypoint format) unless it is already there, trains
``configs/pose/synthetic/hrnet_small.yaml`` and prints the COCO keypoint AP on the synthetic val split
(ground-truth person boxes: the set has no detector) with the CPU time of the process and its data-loading
workers, and the wall time. Exits with status 1 when AP stays below the target (0.7).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

from hrnet.data import synthesize
from hrnet.engine.config import load_config
from hrnet.engine.trainer import train

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "pose" / "synthetic" / "hrnet_small.yaml"
TARGET_AP = 0.7


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the DataLoader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--data", type=Path, default=REPO / "runs" / "bench_pose" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_pose" / "train")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.epochs=40")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    synthesize("pose", args.data)
    print(f"data: {args.data} ({time.perf_counter() - start:.1f} s)")
    cfg = load_config(args.config, [f"data.root={args.data}", f"output_dir={args.out}", *args.overrides])
    if args.out.exists():
        print(f"{args.out} exists from an earlier run; remove it first", file=sys.stderr)
        return 2
    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    summary = train(cfg)
    cpu, wall = cpu_seconds() - cpu_start, time.perf_counter() - wall_start

    metrics = summary["last_metrics"]
    print(f"model: {cfg.model.name} {cfg.model.overrides}, input {list(cfg.data.input_size)}, "
          f"{cfg.train.epochs} epochs, {summary['steps']} steps")
    print(f"val AP {metrics['AP']:.4f} (AP50 {metrics['AP50']:.4f}, AR {metrics['AR']:.4f}; ground-truth "
          f"boxes; best AP {summary['best_metric']:.4f} at epoch {summary['best_epoch']}; target >= {TARGET_AP})")
    print(f"training time: {cpu:.0f} s CPU (process + workers, {args.threads} threads), {wall:.0f} s wall")
    return 0 if metrics["AP"] >= TARGET_AP else 1


if __name__ == "__main__":
    sys.exit(main())
