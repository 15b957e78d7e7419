"""Tiny models of the four tasks on tiny synthetic data, saved as configs + weights, and a short video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from hrnet.data import synthesize
from hrnet.engine.build import build_task
from hrnet.engine.checkpoint import save_checkpoint
from hrnet.engine.config import load_config

TINY = {"width": 4, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1}
#: per task: the synthetic set, its image size, and the config (without data.root / output_dir)
SETUPS = {
    "pose": ("pose", (64, 64), {
        "task": "pose", "model": {"name": "pose_hrnet_w32", "overrides": TINY},
        "data": {"train_ann": "annotations/person_keypoints_train.json", "train_images": "train",
                 "val_ann": "annotations/person_keypoints_val.json", "val_images": "val", "val_boxes": "gt",
                 "input_size": [64, 64]},
        "eval": {"batch_size": 8}}),
    "segmentation": ("seg", (48, 64), {
        "task": "segmentation", "model": {"name": "seg_hrnetv2_w18", "overrides": TINY},
        "data": {"dataset": "folder", "crop_size": [32, 32]}, "eval": {"mode": "whole", "flip_test": False}}),
    "detection": ("det", (64, 80), {
        "task": "detection",
        "model": {"name": "faster_rcnn_hrnetv2p_w18",
                  "overrides": {"num_classes": 4, "frozen_bn": False, "box_score_thresh": 0.0,
                                "box_detections_per_img": 4, "backbone": {**TINY, "out_channels": 16}}},
        "data": {"train_ann": "annotations/instances_train.json", "train_images": "train",
                 "val_ann": "annotations/instances_val.json", "val_images": "val", "min_size": 64, "max_size": 80}}),
    "classification": ("cls", (48, 48), {
        "task": "classification",
        "model": {"name": "cls_hrnet_w18",
                  "overrides": {**TINY, "head_channels": [8, 16, 32, 64], "final_channels": 32}},
        "data": {"image_size": 64, "resize_size": 64}}),
}


@pytest.fixture(autouse=True)
def _one_thread_and_own_cache(single_torch_thread, tmp_path_factory, monkeypatch):
    """One torch thread; deployed models (ONNX files) cached in a folder of the test session."""
    monkeypatch.setenv("HRNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "hrnet_cache"))
    yield


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """``tiny(task) -> (config, weights, data root)``: a randomly initialised tiny model of ``task``."""
    made: dict[str, tuple[Path, Path, Path]] = {}

    def make(task: str) -> tuple[Path, Path, Path]:
        if task not in made:
            kind, size, raw = SETUPS[task]
            folder = tmp_path_factory.mktemp(task)
            count = 8 if kind == "cls" else 4  # one image per class at least
            root = synthesize(kind, folder / "data", num_train=count, num_val=count // 2 if kind != "cls" else 8,
                              image_size=size)
            raw = {**raw, "data": {**raw["data"], "root": str(root)}, "output_dir": str(folder / "run"),
                   "device": "cpu"}
            config = folder / f"{task}.yaml"
            config.write_text(yaml.safe_dump(raw))
            torch.manual_seed(0)
            weights = folder / "weights.pt"
            save_checkpoint(weights, {"model": build_task(load_config(config)).build_model().state_dict()})
            made[task] = config, weights, root
        return made[task]

    return make


def val_images(root: Path) -> Path:
    """The folder of a synthetic set's val images (classification: class folders)."""
    return root / "images" / "val" if (root / "images").is_dir() else root / "val"


def first_image(root: Path) -> Path:
    return sorted(p for p in val_images(root).rglob("*") if p.suffix in (".jpg", ".png"))[0]


def make_video(path: Path, frames: int = 3, size: tuple[int, int] = (48, 64), fps: float = 5.0) -> Path:
    """A short MP4 of moving coloured squares made with OpenCV (``size`` = (height, width))."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
    assert writer.isOpened()
    for n in range(frames):
        frame = np.full((*size, 3), 40, np.uint8)
        cv2.rectangle(frame, (5 + 4 * n, 8), (30 + 4 * n, 40), (0, 200, 255), -1)
        writer.write(frame)
    writer.release()
    return path
