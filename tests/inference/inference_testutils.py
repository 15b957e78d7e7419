"""Tiny models of the four tasks on tiny synthetic data, and a short video made with OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

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
