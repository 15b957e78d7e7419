"""Train a small HRNet pose model on the synthetic stick-figure set and report the CPU time it took.

    python benchmarks/pose_synthetic_train.py [--threads 2] [--data DIR] [--out DIR] [key.sub=value ...]

Generates the synthetic pose set (COCO keypoint format) unless it is already there, trains
``configs/pose/synthetic/hrnet_small.yaml`` and prints the COCO keypoint AP on the synthetic val split
(ground-truth person boxes: the set has no detector) with the CPU time of the process and its data-loading
workers, and the wall time. Exits with status 1 when AP stays below the target (0.7).
"""

from __future__ import annotations

import sys

from synthetic_budget import REPO, parse_args, train_on_synthetic

CONFIG = REPO / "configs" / "pose" / "synthetic" / "hrnet_small.yaml"
TARGET_AP = 0.7


def main() -> int:
    args = parse_args(__doc__, "pose", CONFIG, threads=2)
    cfg, summary, _ = train_on_synthetic(args, "pose")
    metrics = summary["last_metrics"]
    print(f"input {list(cfg.data.input_size)}; val AP {metrics['AP']:.4f} (AP50 {metrics['AP50']:.4f}, AR "
          f"{metrics['AR']:.4f}; ground-truth boxes; best AP {summary['best_metric']:.4f} at epoch "
          f"{summary['best_epoch']}; target >= {TARGET_AP})")
    return 0 if metrics["AP"] >= TARGET_AP else 1


if __name__ == "__main__":
    sys.exit(main())
