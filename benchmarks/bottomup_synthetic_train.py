"""Train a small HigherHRNet bottom-up on the synthetic crowd set and report the CPU time it took.

    python benchmarks/bottomup_synthetic_train.py [--threads 1] [--num-train 640] [--num-val 80] [--data DIR]
                                                  [--out DIR] [key.sub=value ...]

Generates the synthetic pose set as crowds (2-4 overlapping stick figures in every 128x128 image, COCO
keypoint format) unless it is already there, trains ``configs/pose/synthetic/higherhrnet_small.yaml`` with
the engine (``hrnet train``) and prints the COCO keypoint AP on the val split -- no person boxes: people are
found by grouping the heatmap peaks by their tags -- with the CPU time of the process and its data-loading
workers, and the wall time. Exits with status 1 when AP stays below the target (0.5).
"""

from __future__ import annotations

import sys

from synthetic_budget import REPO, parse_args, train_on_synthetic

from hrnet.engine.metrics_log import read_metrics

CONFIG = REPO / "configs" / "pose" / "synthetic" / "higherhrnet_small.yaml"
TARGET_AP = 0.5
PERSONS = (2, 4)
IMAGE_SIZE = (128, 128)


def main() -> int:
    args = parse_args(__doc__, "bottomup", CONFIG, threads=1, sizes={"num_train": 640, "num_val": 80})
    args.synth_options.update(persons=PERSONS, image_size=IMAGE_SIZE)
    _, summary, _ = train_on_synthetic(args, "pose")
    for record in read_metrics(args.out / "metrics.jsonl"):
        if "AP50" in record:
            print(f"epoch {record['epoch']:3d}: AP {record['AP']:.4f} AP50 {record['AP50']:.4f} AR {record['AR']:.4f}")
    metrics = summary["last_metrics"]
    print(f"val AP {metrics['AP']:.4f} (AP50 {metrics['AP50']:.4f}, AP75 {metrics['AP75']:.4f}, "
          f"AR {metrics['AR']:.4f}; no boxes; best AP {summary['best_metric']:.4f} at epoch "
          f"{summary['best_epoch']}; target >= {TARGET_AP})")
    return 0 if metrics["AP"] >= TARGET_AP else 1


if __name__ == "__main__":
    sys.exit(main())
