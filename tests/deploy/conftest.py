"""Tiny HRNets with non-trivial weights: the official N(0, 0.001) init makes every output ~0, which
would let any conversion pass a parity check, so the convs get fan-in-scaled weights and the BNs
random affine parameters and statistics re-estimated on random images."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hrnet
from hrnet.deploy.bench import recalibrate_batchnorm

TINY = {"width": 4, "blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1}
SIZE = (64, 64)


def make_tiny(name: str, seed: int = 0, **overrides) -> nn.Module:
    torch.manual_seed(seed)
    model = hrnet.build_model(name, **{**TINY, **overrides})
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.normal_(m.weight, std=m.weight[0].numel() ** -0.5)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return recalibrate_batchnorm(model, SIZE, batches=1)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    """Keep ONNX files out of the user's cache; Inductor's cache is shared by the session's tests."""
    monkeypatch.setenv("HRNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "hrnet-cache"))


@pytest.fixture(scope="session")
def pose_model() -> nn.Module:
    return make_tiny("pose_hrnet_w32")


@pytest.fixture(scope="session")
def images() -> torch.Tensor:
    return torch.randn(3, 3, *SIZE, generator=torch.Generator().manual_seed(1))
