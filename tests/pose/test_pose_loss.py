"""Heatmap losses: the official JointsMSELoss / OHKM definitions on hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from hrnet.errors import ConfigError
from hrnet.tasks.pose.loss import JointsMSELoss, JointsOHKMMSELoss, build_loss


def _case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pred = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]], [[0.0, 0.0], [0.0, 2.0]]]])
    target = torch.zeros_like(pred)
    weight = torch.tensor([[[1.0], [2.0], [0.0]]])
    return pred, target, weight


def test_mse_is_half_the_weighted_mse_averaged_over_joints():
    pred, target, weight = _case()
    # per joint: mean((w * (p - t))^2) over the 4 pixels -> 1/4, (4 * 0.25 * 4)/4 = 1, 0
    expected = (0.5 * 0.25 + 0.5 * 1.0 + 0.0) / 3
    assert JointsMSELoss(True)(pred, target, weight).item() == pytest.approx(expected)
    unweighted = (0.5 * 0.25 + 0.5 * 0.25 + 0.5 * 1.0) / 3
    assert JointsMSELoss(False)(pred, target, weight).item() == pytest.approx(unweighted)


def test_mse_averages_over_the_batch_and_has_gradients():
    pred, target, weight = _case()
    batch = torch.cat([pred, torch.zeros_like(pred)]).requires_grad_()
    loss = JointsMSELoss()(batch, torch.cat([target, target]), torch.cat([weight, weight]))
    assert loss.item() == pytest.approx((0.5 * 0.25 + 0.5 * 1.0) / 3 / 2)
    loss.backward()
    assert batch.grad[0, 2].abs().sum() == 0  # a zero-weight joint gets no gradient
    assert batch.grad[0, 0, 0, 0] > 0


def test_ohkm_keeps_the_hardest_joints_per_sample():
    pred, target, weight = _case()
    per_joint = torch.tensor([0.5 * 0.25, 0.5 * 1.0, 0.0])
    assert JointsOHKMMSELoss(True, topk=2)(pred, target, weight).item() == pytest.approx(per_joint[:2].sum() / 2)
    assert JointsOHKMMSELoss(True, topk=1)(pred, target, weight).item() == pytest.approx(0.5)
    # two samples: mean over the batch of each sample's top-k mean
    two = JointsOHKMMSELoss(True, topk=1)(torch.cat([pred, 0 * pred]), torch.cat([target] * 2),
                                          torch.cat([weight] * 2))
    assert two.item() == pytest.approx(0.25)


def test_build_loss():
    assert isinstance(build_loss("mse"), JointsMSELoss)
    ohkm = build_loss("ohkm", topk=4)
    assert isinstance(ohkm, JointsOHKMMSELoss) and ohkm.topk == 4
    with pytest.raises(ConfigError, match="ohkm"):
        build_loss("l1")
