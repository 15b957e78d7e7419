"""Task accuracy of the reduced-precision deploy paths on trained weights: AP (pose) or mIoU (seg).

Evaluates the same checkpoint through the task's own evaluation (decoding, flip test, COCO AP or
the confusion matrix) once per deploy path, so the numbers differ only by the numerics of the path:

    python benchmarks/bench_precision_accuracy.py configs/pose/synthetic/quickstart.yaml \
        --weights runs/pose_synthetic_quickstart/checkpoints/best.pt data.root=data/synthetic_pose

The int8 path is calibrated on ``--calib-images`` training images (their training-time
augmentation included), never on the evaluation split. The exported graph has the evaluation
input's height and width, so where training crops differ from it (segmentation evaluates whole
images), calibrate on the training images as evaluation reads them, e.g. for the synthetic seg set:

    python benchmarks/bench_precision_accuracy.py configs/segmentation/synthetic/hrnetv2_tiny.yaml \
        --weights best.pt data.root=DATA --calib-overrides data.val_split=train
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from hrnet.deploy import deploy
from hrnet.deploy.paths import list_paths
from hrnet.engine.build import build_task
from hrnet.engine.config import load_config
from hrnet.engine.data import build_eval_loader
from hrnet.engine.distributed import DistInfo
from hrnet.engine.inference import prepare_model


class DeployedAsModule(nn.Module):
    """Lets a task's ``evaluate(model, ...)`` call a deployed path as if it were the model (whose ``cfg``
    it carries: segmentation reads ``align_corners`` from it)."""

    def __init__(self, deployed, model: nn.Module) -> None:
        super().__init__()
        self.deployed = deployed
        self.cfg = getattr(model, "cfg", None)
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)  # tells the task the device

    def forward(self, images: Tensor):
        return self.deployed(images)


def calibration_batches(task, count: int, batch_size: int = 16, split: str = "train") -> list[Tensor]:
    dataset = task.build_dataset(split)
    images = [dataset[i]["image"] for i in range(min(count, len(dataset)))]
    return [torch.stack(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--paths", default="eager,compile,compile_bf16,onnxruntime,onnxruntime_int8")
    parser.add_argument("--calib-images", type=int, default=256)
    parser.add_argument("--calib-overrides", nargs="+", metavar="KEY=VALUE",
                        help="calibrate on the val split of the config with these overrides (which must point it "
                             "at training images) instead of on the augmented training split")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=Path("runs/precision_accuracy"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = load_config(args.config, args.overrides)
    task, model = prepare_model(cfg, args.weights, torch.device("cpu"))
    loader = build_eval_loader(task.build_dataset("val"), batch_size=cfg.eval.batch_size or cfg.train.batch_size,
                               workers=0, dist_info=DistInfo(), collate_fn=task.collate_fn())
    example = next(iter(loader))["image"][:1]
    if args.calib_overrides:
        calib_task = build_task(load_config(args.config, [*args.overrides, *args.calib_overrides]))
        calibration = calibration_batches(calib_task, args.calib_images, split="val")
    else:
        calibration = calibration_batches(task, args.calib_images)
    available = set(list_paths("cpu"))
    rows = []
    for path in [p for p in args.paths.split(",") if p in available]:
        start = time.perf_counter()
        deployed = deploy(model, path, example=example, calibration=calibration)
        with torch.no_grad():
            metrics = task.evaluate(DeployedAsModule(deployed, model), loader, args.out / path)
        rows.append((path, deployed.path.precision, metrics[task.main_metric], time.perf_counter() - start))
        print(f"{path}: {task.main_metric} {rows[-1][2]:.4f} ({rows[-1][3]:.0f} s)", flush=True)
    base = rows[0][2]
    print(f"\n{args.config} with {args.weights}; {len(loader.dataset)} val samples\n")
    print(f"| path | precision | {task.main_metric} | change vs {rows[0][0]} (points) |")
    print("|---|---|---|---|")
    for path, precision, value, _ in rows:
        print(f"| {path} | {precision} | {100 * value:.2f} | {100 * (value - base):+.2f} |")


if __name__ == "__main__":
    main()
