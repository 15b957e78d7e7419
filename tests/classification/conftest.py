from __future__ import annotations

from pathlib import Path

import pytest

from hrnet.data import synthesize

#: a classifier small enough to train a few steps in a test
TINY = {
    "width": 8,
    "blocks": 1,
    "modules": [1, 1, 1],
    "stage1_blocks": 1,
    "head_channels": [8, 16, 32, 64],
    "final_channels": 32,
}


@pytest.fixture(scope="session")
def cls_data(tmp_path_factory) -> Path:
    """A small synthetic ImageNet-layout set: 8 classes, 16 train and 8 val images of 64x64."""
    return synthesize("cls", tmp_path_factory.mktemp("cls") / "data", num_train=16, num_val=8, seed=1)


def _tiny_config(root: Path, out: Path, **sections) -> dict:
    """A raw experiment config for the tiny classifier on ``root``; ``sections`` update it."""
    raw = {
        "task": "classification",
        "model": {"name": "cls_hrnet_w18", "overrides": dict(TINY)},
        "data": {"root": str(root), "image_size": 64, "resize_size": 64},
        "train": {"epochs": 1, "batch_size": 8, "workers": 0, "log_every": 1},
        "output_dir": str(out),
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(root, out, **sections)``: a raw config of the tiny classifier on ``root``."""
    return _tiny_config
