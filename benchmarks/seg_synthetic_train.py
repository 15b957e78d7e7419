"""Train a small HRNetV2 on the synthetic segmentation set and report the CPU time it took.

    python benchmarks/seg_synthetic_train.py [--threads 1] [--data DIR] [--out DIR] [key.sub=value ...]

Generates the synthetic segmentation set (7 classes: background and six shapes; 1000 train / 50 val
images of 192x256, generic folder layout) unless it is already there, trains
``configs/segmentation/synthetic/hrnetv2_tiny.yaml`` and prints the final mIoU, pixel accuracy and
per-class IoU on the val split with the CPU time and the wall time. Exits with status 1 when
mIoU stays below the target (0.6).
"""

from __future__ import annotations

import json
import sys

from synthetic_budget import REPO, parse_args, train_on_synthetic

CONFIG = REPO / "configs" / "segmentation" / "synthetic" / "hrnetv2_tiny.yaml"
TARGET_MIOU = 0.6


def main() -> int:
    args = parse_args(__doc__, "seg", CONFIG, sizes={"num_train": 1000, "num_val": 50})
    _, summary, _ = train_on_synthetic(args, "seg")
    metrics = summary["last_metrics"]
    per_class = json.loads((args.out / "eval" / "per_class_iou.json").read_text())["IoU"]
    print("per-class IoU: " + ", ".join(f"{name} {iou:.3f}" for name, iou in per_class.items() if iou is not None))
    print(f"val mIoU {metrics['mIoU']:.4f}, pixel acc {metrics['pixel_acc']:.4f} (target mIoU >= {TARGET_MIOU})")
    return 0 if metrics["mIoU"] >= TARGET_MIOU else 1


if __name__ == "__main__":
    sys.exit(main())
