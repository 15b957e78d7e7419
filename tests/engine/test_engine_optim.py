import math

import pytest
import torch
from torch import nn

from hrnet.engine.config import OptimizerConfig, ScheduleConfig
from hrnet.engine.optim import build_optimizer, build_scheduler, lr_factor


def test_pose_recipe_multistep_per_epoch():
    """Official pose: x0.1 at epochs 170 and 200 of 210; every iteration of an epoch shares its lr."""
    cfg = ScheduleConfig(name="multistep", milestones=[170, 200], gamma=0.1)
    per_epoch = 100
    assert lr_factor(0, cfg, per_epoch, 210) == 1
    assert lr_factor(170 * per_epoch - 1, cfg, per_epoch, 210) == 1  # last iteration of epoch 169
    assert lr_factor(170 * per_epoch, cfg, per_epoch, 210) == pytest.approx(0.1)
    assert lr_factor(199 * per_epoch + 99, cfg, per_epoch, 210) == pytest.approx(0.1)
    assert lr_factor(200 * per_epoch, cfg, per_epoch, 210) == pytest.approx(0.01)


def test_poly_per_iteration_formula():
    """Segmentation: lr = base * (1 - iter / max_iter) ** 0.9 with max_iter = epochs * iters per epoch."""
    cfg = ScheduleConfig(name="poly", per="iter", power=0.9)
    for iteration in (0, 1, 37, 599):
        assert lr_factor(iteration, cfg, 60, 10) == pytest.approx((1 - iteration / 600) ** 0.9, abs=1e-15)
    per_epoch_cfg = ScheduleConfig(name="poly", per="epoch", power=2.0)
    assert lr_factor(125, per_epoch_cfg, 60, 10) == pytest.approx((1 - 2 / 10) ** 2)


def test_cosine_and_constant():
    cfg = ScheduleConfig(name="cosine", per="iter")
    assert lr_factor(0, cfg, 10, 10) == pytest.approx(1)
    assert lr_factor(50, cfg, 10, 10) == pytest.approx(0.5)
    assert lr_factor(75, cfg, 10, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.75)))
    assert lr_factor(123, ScheduleConfig(), 10, 20) == 1


def test_linear_warmup_from_ratio():
    """Detection: 500 warmup iterations from 1/3 of the lr, multiplied onto the schedule."""
    cfg = ScheduleConfig(name="multistep", milestones=[8, 11], warmup_iters=500, warmup_ratio=1 / 3)
    assert lr_factor(0, cfg, 1000, 12) == pytest.approx(1 / 3)
    assert lr_factor(250, cfg, 1000, 12) == pytest.approx(1 / 3 + (2 / 3) * 0.5)
    assert lr_factor(500, cfg, 1000, 12) == 1
    assert lr_factor(8000, cfg, 1000, 12) == pytest.approx(0.1)


def test_scheduler_sets_the_lr_of_each_iteration():
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(model.parameters(), OptimizerConfig(name="sgd", lr=0.5))
    cfg = ScheduleConfig(name="poly", per="iter", warmup_iters=3, warmup_ratio=0.2)
    scheduler = build_scheduler(optimizer, cfg, iters_per_epoch=5, epochs=2)
    seen = []
    for _ in range(10):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.5 * lr_factor(i, cfg, 5, 2) for i in range(10)])


def test_optimizers_follow_the_config():
    params = list(nn.Linear(2, 2).parameters())
    adam = build_optimizer(params, OptimizerConfig(name="adam", lr=1e-3))
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["weight_decay"] == 0
    sgd = build_optimizer(params, OptimizerConfig(name="sgd", lr=0.05, nesterov=True, weight_decay=1e-4))
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9 and sgd.defaults["weight_decay"] == 1e-4
    adamw = build_optimizer(params, OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.05))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 0.05
    frozen = nn.Linear(2, 2)
    frozen.bias.requires_grad_(False)
    assert len(build_optimizer(frozen.parameters(), OptimizerConfig()).param_groups[0]["params"]) == 1
