"""``hrnet quickstart --out runs/quickstart``: the whole pose pipeline on a CPU in a few minutes.

Generates the synthetic pose dataset (COCO keypoint format) under ``<out>/data``, trains a small HRNet
with ``configs/pose/synthetic/quickstart.yaml``, evaluates it with COCO keypoint AP and draws predicted
skeletons on a few validation images. Every step is skipped when its result is already there, so an
interrupted quickstart continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..engine.catalog import find_config
from ..engine.config import load_config
from ..engine.inference import predict
from ..engine.trainer import train
from ..io import write_json
from ..synthetic import synthesize

QUICKSTART_CONFIG = "pose/synthetic/quickstart"


def find_quickstart_config() -> Path:
    """The quickstart config shipped inside the package."""
    return find_config(QUICKSTART_CONFIG)


def validation_person_boxes(data_dir: Path, count: int, boxes_file: Path) -> tuple[list[Path], Path]:
    """The first ``count`` validation images and a box file with their ground-truth person boxes,
    the boxes the evaluation used too (the synthetic set has no person detector)."""
    coco = json.loads((data_dir / "annotations" / "person_keypoints_val.json").read_text())
    chosen = sorted(coco["images"], key=lambda image: image["file_name"])[:count]
    names = {image["id"]: image["file_name"] for image in chosen}
    boxes = [
        {"image": names[a["image_id"]], "bbox": a["bbox"], "score": 1.0}
        for a in coco["annotations"]
        if a["image_id"] in names and not a.get("iscrowd", 0)
    ]
    write_json(boxes_file, boxes)
    return [data_dir / "val" / image["file_name"] for image in chosen], boxes_file


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "quickstart",
        help="synthetic data -> train -> COCO AP -> overlays, on a CPU",
        description=(
            "Generate a synthetic COCO-keypoint dataset, train a small HRNet pose model on it, evaluate it "
            "with COCO keypoint AP and draw predictions. Writes checkpoints, metrics.jsonl, curves.png, "
            "eval/ (predictions JSON) and overlays/ under --out."
        ),
    )
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"), metavar="DIR", help="output folder")
    parser.add_argument("--overlays", type=int, default=4, metavar="N", help="validation images to draw (default 4)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides of the quickstart config")
    parser.set_defaults(run=run, prog=parser.prog)
    return parser


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    out: Path = args.out
    print(f"[1/3] synthetic pose dataset in {out / 'data'}", flush=True)
    data_dir = synthesize("pose", out / "data")
    cfg = load_config(find_quickstart_config(), [f"data.root={data_dir}", f"output_dir={out}", *args.overrides])

    print(f"[2/3] training {cfg.model.name} for {cfg.train.epochs} epochs (outputs in {out})", flush=True)
    summary = train(cfg, resume=True)

    print(f"[3/3] overlays of {args.overlays} validation images in {out / 'overlays'}", flush=True)
    images, boxes = validation_person_boxes(data_dir, args.overlays, out / "overlays" / "person_boxes.json")
    weights = summary["best_checkpoint"] or summary["last_checkpoint"]
    written = predict(cfg, weights, images, out / "overlays", boxes=boxes)

    metric = summary["main_metric"]
    value = summary["last_metrics"].get(metric)
    minutes = (time.perf_counter() - start) / 60
    print(
        f"\nQuickstart done in {minutes:.1f} min. COCO keypoint {metric} on the synthetic val split: "
        + (f"{value:.3f}" if value is not None else "n/a")
        + (f" (best {summary['best_metric']:.3f} at epoch {summary['best_epoch']})" if summary["best_epoch"] else "")
    )
    print(f"  checkpoints   {out / 'checkpoints'}")
    print(f"  metrics log   {out / 'metrics.jsonl'}  (TensorBoard: tensorboard --logdir {out / 'tensorboard'})")
    print(f"  curves        {out / 'curves.png'}")
    print(f"  predictions   {out / 'eval'}")
    overlays = [path for path in written if path.suffix == ".png"]
    print(f"  overlays      {len(overlays)} PNG files in {out / 'overlays'}")
    return 0
