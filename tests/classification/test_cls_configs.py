"""The ImageNet configs: one per released model, the official and the modern recipe, README errors stated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hrnet
from hrnet.engine.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "classification"
#: official README (released models): top-1 / top-5 error in % on ImageNet val, single 224 crop
README_ERRORS = {
    "cls_hrnet_w18_small_v1": ("27.7", "9.3"),
    "cls_hrnet_w18_small_v2": ("24.9", "7.6"),
    "cls_hrnet_w18": ("23.2", "6.6"),
    "cls_hrnet_w30": ("21.8", "5.8"),
    "cls_hrnet_w32": ("21.5", "5.8"),
    "cls_hrnet_w40": ("21.1", "5.5"),
    "cls_hrnet_w44": ("21.1", "5.6"),
    "cls_hrnet_w48": ("20.7", "5.5"),
    "cls_hrnet_w64": ("20.5", "5.4"),
}
OFFICIAL = sorted(p for p in (CONFIGS / "imagenet").glob("hrnet_*.yaml") if "cosine" not in p.name)


def test_one_official_config_per_released_model():
    assert set(README_ERRORS) == set(hrnet.list_models("cls_"))
    names = [load_config(path).model.name for path in OFFICIAL]
    assert sorted(names) == sorted(README_ERRORS)


@pytest.mark.parametrize("path", OFFICIAL, ids=lambda p: p.stem)
def test_official_recipe_and_stated_errors(path):
    cfg = load_config(path)
    train = cfg.train
    assert cfg.task == "classification" and train.epochs == 100 and train.batch_size == 32
    assert (train.optimizer.name, train.optimizer.lr, train.optimizer.momentum) == ("sgd", 0.05, 0.9)
    assert train.optimizer.nesterov and train.optimizer.weight_decay == 1e-4
    assert (train.schedule.name, train.schedule.per, train.schedule.milestones) == ("multistep", "epoch", [30, 60, 90])
    assert train.schedule.gamma == 0.1 and train.schedule.warmup_iters == 0
    data = cfg.data
    assert (data.image_size, data.resize_size, data.scale, data.hflip) == (224, None, (0.08, 1.0), 0.5)
    assert data.mixup_alpha == data.cutmix_alpha == cfg.loss.label_smoothing == 0
    top1, top5 = README_ERRORS[cfg.model.name]
    stated = re.search(r"top-1 error ([\d.]+) %, top-5 error ([\d.]+) %", path.read_text())
    assert stated and stated.groups() == (top1, top5)


@pytest.mark.parametrize("path", sorted((CONFIGS / "imagenet").glob("hrnet_*cosine*.yaml")), ids=lambda p: p.stem)
def test_modern_recipe(path):
    cfg = load_config(path)
    assert cfg.train.epochs == 300 and cfg.train.schedule.name == "cosine" and cfg.train.schedule.warmup_iters > 0
    assert cfg.loss.label_smoothing == 0.1 and cfg.data.mixup_alpha > 0 and cfg.data.cutmix_alpha > 0
    assert "top-1 error" in path.read_text()


def test_synthetic_config_loads():
    cfg = load_config(CONFIGS / "synthetic" / "hrnet_tiny.yaml")
    assert cfg.task == "classification" and cfg.data.image_size == 64
