"""Train a small HRNetV2p Faster R-CNN on the synthetic detection set and report the CPU time it took.

    python benchmarks/det_synthetic_train.py [--threads 1] [--data DIR] [--out DIR] [key.sub=value ...]

Generates the synthetic detection set (4 shapes; 200 train / 50 val images of 192x256, COCO instances
layout) unless it is already there, trains ``configs/detection/synthetic/faster_rcnn_tiny.yaml`` from
scratch with the engine (``hrnet train``) and prints the val COCO bbox numbers of every evaluation, the
CPU time and the wall time. Exits with status 1 when the final AP50 stays below the target (0.5).
``--config configs/detection/synthetic/centernet_tiny.yaml`` trains the small CenterNet on HRNetV2 instead.
"""

from __future__ import annotations

import sys

from synthetic_budget import REPO, parse_args, train_on_synthetic

from hrnet.engine.metrics_log import read_metrics

CONFIG = REPO / "configs" / "detection" / "synthetic" / "faster_rcnn_tiny.yaml"
TARGET_AP50 = 0.5


def main() -> int:
    args = parse_args(__doc__, "det", CONFIG)
    _, summary, _ = train_on_synthetic(args, "det")
    for record in read_metrics(args.out / "metrics.jsonl"):
        if "bbox_AP50" in record:
            print(f"epoch {record['epoch']:3d}: bbox AP {record['bbox_AP']:.3f}, AP50 {record['bbox_AP50']:.3f}")
    metrics = summary["last_metrics"]
    print(f"val bbox AP {metrics['bbox_AP']:.4f}, AP50 {metrics['bbox_AP50']:.4f} (target AP50 >= {TARGET_AP50})")
    return 0 if metrics["bbox_AP50"] >= TARGET_AP50 else 1


if __name__ == "__main__":
    sys.exit(main())
