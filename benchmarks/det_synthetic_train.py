"""Train a small HRNetV2p Faster R-CNN on the synthetic detection set and report the CPU time it took.

    python benchmarks/det_synthetic_train.py [--threads 1] [--data DIR] [--out DIR] [key.sub=value ...]

Generates the synthetic detection set (4 shapes; 200 train / 50 val images of 192x256, COCO instances
layout) unless it is already there, trains ``configs/detection/synthetic/faster_rcnn_tiny.yaml`` from
scratch with the engine (``hrnet train``) and prints the val COCO bbox numbers of every evaluation, the
process CPU time and the wall time. Exits with status 1 when the final AP50 stays below the target (0.5).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from hrnet.data import synthesize
from hrnet.engine.config import load_config
from hrnet.engine.metrics_log import read_metrics
from hrnet.engine.trainer import train

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "detection" / "synthetic" / "faster_rcnn_tiny.yaml"
TARGET_AP50 = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--data", type=Path, default=REPO / "runs" / "bench_det" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_det" / "train")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.epochs=30")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    synthesize("det", args.data, seed=0)
    print(f"data: {args.data} ({time.perf_counter() - start:.1f} s)")

    cfg = load_config(CONFIG, [f"data.root={args.data}", f"output_dir={args.out}", *args.overrides])
    if args.out.exists():
        print(f"{args.out} exists from an earlier run; remove it first", file=sys.stderr)
        return 2
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    summary = train(cfg)
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start

    for record in read_metrics(args.out / "metrics.jsonl"):
        if "bbox_AP50" in record:
            print(f"epoch {record['epoch']:3d}: bbox AP {record['bbox_AP']:.3f}, AP50 {record['bbox_AP50']:.3f}")
    metrics = summary["last_metrics"]
    print(f"model: {cfg.model.name} {cfg.model.overrides}, {cfg.train.epochs} epochs, {summary['steps']} steps")
    print(f"val bbox AP {metrics['bbox_AP']:.4f}, AP50 {metrics['bbox_AP50']:.4f} (target AP50 >= {TARGET_AP50})")
    print(f"training time: {cpu:.0f} s CPU ({args.threads} threads), {wall:.0f} s wall")
    return 0 if metrics["bbox_AP50"] >= TARGET_AP50 else 1


if __name__ == "__main__":
    sys.exit(main())
