"""Train a small HRNetV2p detector on the synthetic detection set and report the CPU time it took.

    python benchmarks/det_synthetic_train.py [--threads 1] [--config YAML] [--stuff-maps] [--data DIR]
                                             [--out DIR] [key.sub=value ...]

Generates the synthetic detection set (4 shapes; 200 train / 50 val images of 192x256, COCO instances
layout; with ``--stuff-maps`` also COCO-Stuff-style label maps, which HTC's semantic branch trains on)
unless it is already there, trains ``--config`` (default ``configs/detection/synthetic/faster_rcnn_tiny.yaml``;
``cascade_rcnn_tiny.yaml``, ``cascade_mask_rcnn_tiny.yaml`` and ``htc_tiny.yaml`` beside it train the
cascades with the same backbone and schedule; ``centernet_tiny.yaml`` the small CenterNet on HRNetV2)
from scratch with the engine (``hrnet train``) and prints the val COCO bbox (and mask) numbers of every
evaluation, the CPU time and the wall time. Exits with status 1 when the final bbox AP50 stays below the
target (0.5).
"""

from __future__ import annotations

import sys

from synthetic_budget import REPO, parse_args, train_on_synthetic

from hrnet.engine.metrics_log import read_metrics

CONFIG = REPO / "configs" / "detection" / "synthetic" / "faster_rcnn_tiny.yaml"
TARGET_AP50 = 0.5


def _numbers(record: dict, iou_type: str) -> str:
    return ", ".join(f"{name} {record[f'{iou_type}_{name}']:.3f}" for name in ("AP", "AP50", "AP75"))


def main() -> int:
    args = parse_args(__doc__, "det", CONFIG, flags={"stuff_maps": "also write COCO-Stuff-style label maps"})
    _, summary, _ = train_on_synthetic(args, "det")
    for record in read_metrics(args.out / "metrics.jsonl"):
        if "bbox_AP50" in record:
            masks = f" | mask {_numbers(record, 'segm')}" if "segm_AP" in record else ""
            print(f"epoch {record['epoch']:3d}: bbox {_numbers(record, 'bbox')}{masks}")
    metrics = summary["last_metrics"]
    masks = f"; mask {_numbers(metrics, 'segm')}" if "segm_AP" in metrics else ""
    print(f"val bbox {_numbers(metrics, 'bbox')}{masks} (target bbox AP50 >= {TARGET_AP50})")
    return 0 if metrics["bbox_AP50"] >= TARGET_AP50 else 1


if __name__ == "__main__":
    sys.exit(main())
