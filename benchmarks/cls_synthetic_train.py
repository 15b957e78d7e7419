"""Train a small HRNet classifier on the synthetic shapes set and report the CPU time it took.

    python benchmarks/cls_synthetic_train.py [--threads 1] [--data DIR] [--out DIR] [key.sub=value ...]

Generates the synthetic classification set (8 classes; 3200 train / 400 val images of 64x64) unless it
is already there, trains ``configs/classification/synthetic/hrnet_tiny.yaml`` and prints the final
top-1/top-5 on the val split with the process CPU time and the wall time. Exits with status 1 when
top-1 stays below the target (0.9).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from hrnet.data import synthesize
from hrnet.engine.config import load_config
from hrnet.engine.trainer import train

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "classification" / "synthetic" / "hrnet_tiny.yaml"
TARGET_TOP1 = 0.9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--data", type=Path, default=REPO / "runs" / "bench_cls" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_cls" / "train")
    parser.add_argument("--num-train", type=int, default=3200)
    parser.add_argument("--num-val", type=int, default=400)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.epochs=8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    synthesize("cls", args.data, num_train=args.num_train, num_val=args.num_val, seed=0)
    print(f"data: {args.data} ({time.perf_counter() - start:.1f} s)")

    overrides = [f"data.root={args.data}", f"output_dir={args.out}", *args.overrides]
    cfg = load_config(CONFIG, overrides)
    if args.out.exists():
        print(f"{args.out} exists from an earlier run; remove it first", file=sys.stderr)
        return 2
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    summary = train(cfg)
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start

    metrics = summary["last_metrics"]
    print(f"model: {cfg.model.name} {cfg.model.overrides}, {cfg.train.epochs} epochs, {summary['steps']} steps")
    print(f"val top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f} (target top-1 >= {TARGET_TOP1})")
    print(f"training time: {cpu:.0f} s CPU ({args.threads} threads), {wall:.0f} s wall")
    return 0 if metrics["top1"] >= TARGET_TOP1 else 1


if __name__ == "__main__":
    sys.exit(main())
