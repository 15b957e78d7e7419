"""Train a small HRNetV2 on the synthetic segmentation set and report the CPU time it took.

    python benchmarks/seg_synthetic_train.py [--threads 1] [--data DIR] [--out DIR] [key.sub=value ...]

Generates the synthetic segmentation set (7 classes: background and six shapes; 1000 train / 50 val
images of 192x256, generic folder layout) unless it is already there, trains
``configs/segmentation/synthetic/hrnetv2_tiny.yaml`` and prints the final mIoU, pixel accuracy and
per-class IoU on the val split with the process CPU time and the wall time. Exits with status 1 when
mIoU stays below the target (0.6).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from hrnet.data import synthesize
from hrnet.engine.config import load_config
from hrnet.engine.trainer import train

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "segmentation" / "synthetic" / "hrnetv2_tiny.yaml"
TARGET_MIOU = 0.6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--data", type=Path, default=REPO / "runs" / "bench_seg" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_seg" / "train")
    parser.add_argument("--num-train", type=int, default=1000)
    parser.add_argument("--num-val", type=int, default=50)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.epochs=30")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    synthesize("seg", args.data, num_train=args.num_train, num_val=args.num_val, seed=0)
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
    per_class = json.loads((args.out / "eval" / "per_class_iou.json").read_text())["IoU"]
    print(f"model: {cfg.model.name} {cfg.model.overrides}, {cfg.train.epochs} epochs, {summary['steps']} steps")
    print("per-class IoU: " + ", ".join(f"{name} {iou:.3f}" for name, iou in per_class.items() if iou is not None))
    print(f"val mIoU {metrics['mIoU']:.4f}, pixel acc {metrics['pixel_acc']:.4f} (target mIoU >= {TARGET_MIOU})")
    print(f"training time: {cpu:.0f} s CPU ({args.threads} threads), {wall:.0f} s wall")
    return 0 if metrics["mIoU"] >= TARGET_MIOU else 1


if __name__ == "__main__":
    sys.exit(main())
