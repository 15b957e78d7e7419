"""Throughput of the pose training data pipeline (crops/s) next to the training speed of HRNet-W32.

    python benchmarks/pose_data_throughput.py [--workers 2] [--batches 20] [--input 192 256] [--threads N]

Loads person crops exactly as training does (image decode, official augmentation: half body, scale,
rotation, flip; affine warp; ImageNet normalisation; MSRA targets) from the real COCO sample in
``../shared/data/coco_keypoints`` (or a synthetic set when it is absent) through a DataLoader with
``--workers`` processes, and reports crops per second. It then times forward + backward of HRNet-W32 at
the same input size on this machine and says whether data loading keeps up with it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from hrnet.data import synthesize
from hrnet.models import build_model
from hrnet.tasks.pose.codecs import MSRAHeatmap
from hrnet.tasks.pose.data import TopDownDataset, load_coco_instances
from hrnet.tasks.pose.loss import JointsMSELoss
from hrnet.tasks.pose.meta import COCO_META

REPO = Path(__file__).resolve().parents[1]


def person_instances(min_count: int) -> tuple[list, str]:
    """Training persons of the shared COCO sample (repeated up to ``min_count``), else of a synthetic set."""
    root = Path(os.environ.get("HRNET_SHARED_DATA", REPO.parent / "shared" / "data")) / "coco_keypoints"
    if root.is_dir():
        ann, images, source = root / "annotations/person_keypoints_train2017.json", root / "train2017", "COCO sample"
    else:
        data = synthesize("pose", REPO / "runs" / "bench_pose" / "data")
        ann, images, source = data / "annotations/person_keypoints_train.json", data / "train", "synthetic"
    _, insts, _ = load_coco_instances(ann, images, COCO_META, 0.75)
    return (insts * (min_count // len(insts) + 1))[:min_count], f"{source} ({len(insts)} persons)"


def loader_throughput(dataset: TopDownDataset, workers: int, batch_size: int, batches: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0, drop_last=True)
    it = iter(loader)
    next(it)  # start the workers
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def training_throughput(input_size: tuple[int, int], batch_size: int, steps: int) -> float:
    model = build_model("pose_hrnet_w32").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = JointsMSELoss()
    w, h = input_size
    x = torch.randn(batch_size, 3, h, w)
    target, weight = torch.rand(batch_size, 17, h // 4, w // 4), torch.ones(batch_size, 17, 1)

    def step() -> None:
        optimizer.zero_grad()
        criterion(model(x), target, weight).backward()
        optimizer.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--input", type=int, nargs=2, default=(192, 256), metavar=("W", "H"))
    parser.add_argument("--model-batch", type=int, default=8, help="batch of the W32 timing (default 8)")
    parser.add_argument("--model-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the W32 timing")
    parser.add_argument("--no-model", action="store_true", help="skip the W32 timing")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    size = tuple(args.input)
    instances, source = person_instances((args.batches + 2) * args.batch_size)
    codec = MSRAHeatmap(size, (size[0] // 4, size[1] // 4), 2.0)
    dataset = TopDownDataset(instances, codec, COCO_META, train=True)
    crops = loader_throughput(dataset, args.workers, args.batch_size, args.batches)
    print(f"data: {source}, input {size[0]}x{size[1]}, official augmentation + MSRA targets")
    print(f"loading: {crops:.1f} crops/s with {args.workers} workers "
          f"({args.batches} batches of {args.batch_size})")
    if args.no_model:
        return 0
    trained = training_throughput(size, args.model_batch, args.model_steps)
    print(f"training: HRNet-W32 forward + backward {trained:.1f} samples/s on {torch.get_num_threads()} threads")
    verdict = "keeps up with" if crops >= trained else "is SLOWER than"
    print(f"data loading {verdict} W32 training on this machine ({crops / trained:.1f}x)")
    return 0 if crops >= trained else 1


if __name__ == "__main__":
    sys.exit(main())
