"""Seeded heatmaps and tags of several people, the inputs of the grouping parity cases.

Each person has a tag value (persons about 2 apart, as trained tags are), a centre, and a Gaussian peak
per joint it shows, with the tag value plus noise around the peak; the tag maps elsewhere are noise, and
the heatmaps carry faint noise and a few spurious peaks.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

CASES = {
    "coco_1tag": {"seed": 11, "joints": 17, "size": (40, 48), "people": 6, "tag_dim": 1, "spread": 9.0,
                  "params": {}},
    "coco_flip_crowded": {"seed": 12, "joints": 17, "size": (36, 44), "people": 8, "tag_dim": 2, "spread": 5.0,
                          "params": {"max_num_people": 12, "nms_kernel": 3}},
    "crowdpose_ignore": {"seed": 13, "joints": 14, "size": (32, 32), "people": 5, "tag_dim": 2, "spread": 6.0,
                         "params": {"max_num_people": 4, "ignore_too_much": True, "use_detection_val": False,
                                    "detection_threshold": 0.2}},
    "no_refine": {"seed": 14, "joints": 17, "size": (40, 40), "people": 4, "tag_dim": 1, "spread": 8.0,
                  "params": {"refine": False, "adjust": False}},
    "empty": {"seed": 15, "joints": 17, "size": (24, 24), "people": 0, "tag_dim": 1, "spread": 6.0,
              "params": {}},
}


def case_inputs(seed: int, joints: int, size: tuple[int, int], people: int, tag_dim: int, spread: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """``heatmaps (K, H, W)`` and ``tags (K, H, W, L)``, float32."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    heatmaps = rng.uniform(0, 0.04, size=(joints, h, w))
    tags = rng.normal(0, 3, size=(joints, h, w, tag_dim))
    person_tags = np.cumsum(rng.uniform(1.6, 2.6, size=people)) - 5
    for p in range(people):
        centre = rng.uniform([4, 4], [w - 5, h - 5])
        for j in range(joints):
            if rng.random() < 0.2:
                continue
            x, y = np.clip(centre + rng.normal(0, spread, size=2), 0, [w - 1, h - 1])
            peak = rng.uniform(0.12, 1.0) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
            heatmaps[j] = np.maximum(heatmaps[j], peak)
            near = (xx - x) ** 2 + (yy - y) ** 2 <= 6.0
            tags[j][near] = person_tags[p] + rng.normal(0, 0.15, size=(int(near.sum()), tag_dim))
    for _ in range(3 if people else 0):  # spurious peaks with tags of nobody
        j, x, y = rng.integers(joints), rng.uniform(0, w), rng.uniform(0, h)
        heatmaps[j] = np.maximum(heatmaps[j], 0.3 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.0))
    return heatmaps.astype(np.float32), tags.astype(np.float32)


class FakeHigherHRNet(torch.nn.Module):
    """A fixed stand-in for a HigherHRNet with the official output layout: ``[(N, 2K, H/4, W/4) heatmaps +
    tags, (N, K, H/2, W/2) heatmaps]``, from seeded 1x1 projections of the pooled image (not mirror-symmetric,
    so the flip test's joint swapping shows)."""

    def __init__(self, joints: int = 17, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w4 = torch.nn.Parameter(torch.randn(2 * joints, 3, generator=g), requires_grad=False)
        self.w2 = torch.nn.Parameter(torch.randn(joints, 3, generator=g), requires_grad=False)
        self.ramp = torch.nn.Parameter(torch.randn(2 * joints, 1, 1, generator=g) * 0.02, requires_grad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = torch.nn.functional.avg_pool2d(x, 4)
        b = torch.nn.functional.avg_pool2d(x, 2)
        cols = torch.arange(a.shape[3], dtype=x.dtype)
        out4 = torch.sigmoid(torch.einsum("oc,nchw->nohw", self.w4, a) + self.ramp * cols)
        out2 = torch.sigmoid(torch.einsum("oc,nchw->nohw", self.w2, b))
        return [out4, out2]


def fake_image(seed: int, height: int, width: int) -> np.ndarray:
    """A smooth random RGB image (uint8)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.uint8)


#: test-time cases recorded from the official valid.py loop with the fake model
TEST_TIME_CASES = {
    "single_scale_flip": {"image": (7, 150, 100), "input_size": 128, "scales": [1], "flip": True,
                          "project2image": True},
    "multi_scale_flip": {"image": (8, 120, 170), "input_size": 128, "scales": [2, 1, 0.5], "flip": True,
                         "project2image": True},
    "multi_scale_no_project": {"image": (9, 100, 140), "input_size": 128, "scales": [2, 1, 0.5], "flip": False,
                               "project2image": False},
}
