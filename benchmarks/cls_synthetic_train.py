"""Train a small HRNet classifier on the synthetic shapes set and report the CPU time it took.

    python benchmarks/cls_synthetic_train.py [--threads 1] [--data DIR] [--out DIR] [key.sub=value ...]

Generates the synthetic classification set (8 classes; 3200 train / 400 val images of 64x64) unless it
is already there, trains ``configs/classification/synthetic/hrnet_tiny.yaml`` and prints the final
top-1/top-5 on the val split with the CPU time and the wall time. Exits with status 1 when
top-1 stays below the target (0.9).
"""

from __future__ import annotations

import sys

from synthetic_budget import REPO, parse_args, train_on_synthetic

CONFIG = REPO / "configs" / "classification" / "synthetic" / "hrnet_tiny.yaml"
TARGET_TOP1 = 0.9


def main() -> int:
    args = parse_args(__doc__, "cls", CONFIG, sizes={"num_train": 3200, "num_val": 400})
    _, summary, _ = train_on_synthetic(args, "cls")
    metrics = summary["last_metrics"]
    print(f"val top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f} (target top-1 >= {TARGET_TOP1})")
    return 0 if metrics["top1"] >= TARGET_TOP1 else 1


if __name__ == "__main__":
    sys.exit(main())
