"""Small models and data builders shared by the segmentation tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hrnet.tasks.segmentation.classes import CITYSCAPES_PALETTE, CITYSCAPES_TRAIN_TO_LABEL_ID
from hrnet.tasks.segmentation.transforms import IMAGENET_MEAN, IMAGENET_STD


class PointwiseNet(nn.Module):
    """A 1x1 convolution: every output pixel depends only on its input pixel, so whole-image and
    sliding-window scores must agree exactly."""

    def __init__(self, num_classes: int = 5, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class QuarterNet(nn.Module):
    """Logits at 1/4 resolution like HRNet (a 4x4 stride-4 conv), mirror-asymmetric weights."""

    def __init__(self, num_classes: int = 5, seed: int = 0, outputs: int = 1) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.convs = nn.ModuleList(nn.Conv2d(3, num_classes, 4, stride=4) for _ in range(outputs))

    def forward(self, x: torch.Tensor):
        outs = [conv(x) for conv in self.convs]
        return outs[0] if len(outs) == 1 else outs


def one_hot_logits(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(H, W)`` ids -> ``(1, K, H, W)`` logits 1 at the class, 0 elsewhere (0 everywhere when ignored)."""
    valid = (label >= 0) & (label < num_classes)
    hot = torch.zeros(num_classes, *label.shape)
    hot.scatter_(0, torch.where(valid, label, 0).long()[None], valid[None].float())
    return hot[None]


class LabelOracle(nn.Module):
    """Returns the one-hot ground truth of whichever known image it is given, also when the image was
    padded at the bottom/right, and of its mirror image (with left/right classes exchanged, as a real
    model sees a mirrored scene)."""

    def __init__(
        self, pairs: list[tuple[torch.Tensor, torch.Tensor]], num_classes: int, swap: tuple[tuple[int, int], ...] = ()
    ) -> None:
        super().__init__()
        self.pairs = pairs
        self.num_classes = num_classes
        self.swap = swap
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = x[0]
        for image, label in self.pairs:
            h, w = image.shape[-2:]
            if seen.shape[-2] < h or seen.shape[-1] < w:
                continue
            if torch.equal(seen[:, :h, :w], image):
                mirrored = False
            elif torch.equal(seen.flip(-1)[:, :h, :w], image):
                mirrored = True
            else:
                continue
            if label.shape != (h, w):  # evaluation resized the image but not the label
                label = F.interpolate(label[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()
            out = torch.zeros(1, self.num_classes, *seen.shape[-2:])
            out[..., :h, :w] = one_hot_logits(label, self.num_classes)
            if mirrored:
                order = list(range(self.num_classes))
                for a, b in self.swap:
                    order[a], order[b] = b, a
                out = out[:, order].flip(-1)
            return out
        raise AssertionError(f"oracle got an unknown input of shape {tuple(x.shape)}")


class ColourOracle(nn.Module):
    """Decodes each pixel's class from its colour (nearest palette entry): a position-free oracle that
    works on any crop or mirror of an image painted with the class colours."""

    def __init__(self, palette: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("palette", torch.as_tensor(palette, dtype=torch.float32) / 255.0)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x * self.std + self.mean
        dist = ((rgb[:, None] - self.palette[None, :, :, None, None]) ** 2).sum(2)
        ids = dist.argmin(1)
        return torch.nn.functional.one_hot(ids, len(self.palette)).permute(0, 3, 1, 2).float()


def write_cityscapes(
    root: Path, split: str, count: int = 2, size: tuple[int, int] = (48, 96), seed: int = 0
) -> list[np.ndarray]:
    """A Cityscapes-layout sample: PNG images painted with the class colours (black where ignored) and
    ``gtFine_labelIds`` with labelIds of the 19 classes plus ignored ids (0-6, 9, 14, 29, 30) and 255.
    Returns the expected trainId maps (255 = ignore)."""
    rng = np.random.default_rng(seed)
    ignored_ids = np.array([0, 1, 3, 4, 5, 6, 9, 14, 29, 30, 255])
    expected = []
    for i in range(count):
        city = "synthcity" if i % 2 == 0 else "othercity"
        stem = f"{city}_{i:06d}_000019"
        # blocks of 8x8 pixels, one id each, so every class occurs
        blocks = (size[0] // 8, size[1] // 8)
        ids = rng.choice(np.concatenate([CITYSCAPES_TRAIN_TO_LABEL_ID, ignored_ids]), size=blocks)
        ids.flat[: len(CITYSCAPES_TRAIN_TO_LABEL_ID)] = CITYSCAPES_TRAIN_TO_LABEL_ID
        label_ids = np.kron(ids, np.ones((8, 8), dtype=np.int64)).astype(np.uint8)
        train_ids = np.full(label_ids.shape, 255, dtype=np.uint8)
        for train_id, label_id in enumerate(CITYSCAPES_TRAIN_TO_LABEL_ID):
            train_ids[label_ids == label_id] = train_id
        rgb = np.zeros((*size, 3), dtype=np.uint8)
        known = train_ids != 255
        rgb[known] = CITYSCAPES_PALETTE[train_ids[known]]
        image_dir = root / "leftImg8bit" / split / city
        label_dir = root / "gtFine" / split / city
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(image_dir / f"{stem}_leftImg8bit.png"), rgb[:, :, ::-1])
        cv2.imwrite(str(label_dir / f"{stem}_gtFine_labelIds.png"), label_ids)
        expected.append(train_ids)
    return expected


def write_folder_dataset(
    root: Path,
    split: str = "train",
    count: int = 3,
    size: tuple[int, int] = (40, 56),
    num_classes: int = 3,
    seed: int = 0,
) -> None:
    """A generic-layout dataset: random class blocks, image colour = class colour."""
    import json

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    colours = [[(37 * i) % 256, (91 * i + 50) % 256, (151 * i + 20) % 256] for i in range(num_classes)]
    (root / "classes.json").write_text(
        json.dumps({"classes": [{"name": f"c{i}", "color": c} for i, c in enumerate(colours)], "ignore_index": 255})
    )
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        label = np.kron(
            rng.integers(0, num_classes, size=(size[0] // 8, size[1] // 8)), np.ones((8, 8), dtype=np.int64)
        ).astype(np.uint8)
        label[:2, :2] = 255
        rgb = np.array(colours, dtype=np.uint8)[np.minimum(label, num_classes - 1)]
        cv2.imwrite(str(root / "images" / split / f"{i:03d}.png"), rgb[:, :, ::-1])
        cv2.imwrite(str(root / "labels" / split / f"{i:03d}.png"), label)
