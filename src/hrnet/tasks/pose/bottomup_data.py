"""Bottom-up training and validation data: whole COCO-format images with every person's keypoints.

Training follows the official ``COCOKeypoints`` + ``RandomAffineTransform`` + ``RandomHorizontalFlip``:
a random scale (``min_scale``..``max_scale`` of the short side), rotation (+-``max_rotation`` degrees) and
translation (+-``max_translate`` pixels per 200 pixels of scale) warp the image to a square
``input_size`` crop, and the same warp maps the keypoints and the ignore mask (crowd regions and persons
annotated without keypoints) to each output resolution; a horizontal flip then mirrors everything and
swaps left/right joints. Targets per output are the heatmaps, the mask and the tag indices of
:mod:`~hrnet.tasks.pose.associative_embedding`.

Validation items are the whole RGB images (with their image id); the evaluation resizes them itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ...errors import DataError
from ...media import read_image
from .associative_embedding import heatmap_targets, ignore_mask, tag_indices
from .data import _check_keypoints, _image_path, _person_category, _sample_rng, load_coco
from .meta import KeypointMeta
from .transforms import to_input_tensor

__all__ = ["BottomUpAugment", "affine_matrix", "random_affine", "BottomUpDataset", "bottomup_collate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BottomUpAugment:
    """The official training augmentation (``DATASET`` of the HigherHRNet COCO configs)."""

    max_rotation: float = 30.0
    min_scale: float = 0.75
    max_scale: float = 1.5
    #: the side the scale is taken from: 'short' (official) or 'long'
    scale_type: str = "short"
    max_translate: float = 40.0
    flip_prob: float = 0.5


def affine_matrix(center: Sequence[float], scale: float, size: int, rotation: float = 0.0) -> np.ndarray:
    """The 2x3 warp of the official ``_get_affine_matrix``: the ``200 * scale`` square around ``center``
    onto a ``size`` square, rotated by ``rotation`` degrees about the output centre."""
    side = 200.0 * scale
    m = np.array([[size / side, 0.0, size * (0.5 - center[0] / side)],
                  [0.0, size / side, size * (0.5 - center[1] / side)],
                  [0.0, 0.0, 1.0]])
    if rotation:
        rad = -rotation * np.pi / 180
        sn, cs = np.sin(rad), np.cos(rad)
        about = size / 2
        rot = np.array([[cs, -sn, about - cs * about + sn * about],
                        [sn, cs, about - sn * about - cs * about],
                        [0.0, 0.0, 1.0]])
        m = rot @ m
    return m[:2]


def random_affine(image: np.ndarray, mask: np.ndarray, joints: np.ndarray, input_size: int,
                  output_sizes: Sequence[int], aug: BottomUpAugment, rng: np.random.Generator
                  ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Warp ``image`` to ``input_size`` and ``mask`` / ``joints (P, K, 3)`` to each output size with one
    random scale, rotation and translation; returns the image, per-output masks and per-output joints."""
    height, width = image.shape[:2]
    center = np.array((width / 2, height / 2))
    side = min(height, width) if aug.scale_type == "short" else max(height, width)
    scale = side / 200 * (rng.random() * (aug.max_scale - aug.min_scale) + aug.min_scale)
    rotation = (rng.random() * 2 - 1) * aug.max_rotation
    if aug.max_translate > 0:
        limit = int(aug.max_translate * scale)
        if limit > 0:
            center = center + rng.integers(-limit, limit, size=2)
    masks, warped = [], []
    for size in output_sizes:
        m = affine_matrix(center, scale, size, rotation)
        masks.append((cv2.warpAffine((mask * 255).astype(np.uint8), m, (size, size)) / 255 > 0.5).astype(np.float32))
        moved = joints.copy()
        moved[..., :2] = joints[..., :2] @ m[:, :2].T + m[:, 2]
        warped.append(moved)
    image = cv2.warpAffine(image, affine_matrix(center, scale, input_size, rotation), (input_size, input_size))
    return image, masks, warped


def _flip(image: np.ndarray, masks: list[np.ndarray], joints: list[np.ndarray], output_sizes: Sequence[int],
          flip_index: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The official ``RandomHorizontalFlip`` (x -> size - 1 - x at each output, joints swapped)."""
    image = np.ascontiguousarray(image[:, ::-1])
    masks = [np.ascontiguousarray(m[:, ::-1]) for m in masks]
    flipped = []
    for j, size in zip(joints, output_sizes, strict=True):
        j = j[:, list(flip_index)].copy()
        j[..., 0] = size - j[..., 0] - 1
        flipped.append(j)
    return image, masks, flipped


class BottomUpDataset(Dataset):
    """Whole images of a COCO-format keypoint file for a bottom-up model.

    Training items: ``image`` (3, S, S) normalised, and per output resolution ``heatmaps`` (K, s, s),
    ``masks`` (s, s) and ``joints`` (max_people, K, 2) tag indices. Validation items: ``image_id`` and the
    RGB ``image`` array. Training keeps only images with at least one annotation (official).
    """

    def __init__(self, ann_file: str | Path, image_dir: str | Path, meta: KeypointMeta, train: bool = False,
                 input_size: int = 512, output_sizes: Sequence[int] = (128, 256), sigma: float = 2.0,
                 max_people: int = 30, augment: BottomUpAugment | None = None, tag_per_joint: bool = True,
                 missing_images: str = "error") -> None:
        self.ann_file, self.image_dir = Path(ann_file), Path(image_dir)
        self.coco = load_coco(self.ann_file)
        self.category_id = _person_category(self.coco, self.ann_file, meta)
        self.meta, self.train = meta, train
        self.input_size, self.output_sizes = int(input_size), [int(s) for s in output_sizes]
        self.sigma, self.max_people, self.tag_per_joint = sigma, max_people, tag_per_joint
        self.augment = augment or BottomUpAugment()
        ids = sorted(self.coco.getImgIds())
        if train:
            ids = [i for i in ids if self.coco.getAnnIds(imgIds=i, iscrowd=None)]
        missing = [i for i in ids if not _image_path(self.image_dir, self.coco.imgs[i]).is_file()]
        if missing and missing_images == "error":
            path = _image_path(self.image_dir, self.coco.imgs[missing[0]])
            raise DataError(f"{len(missing)} image(s) of {self.ann_file} are missing, e.g. {path} "
                            "(data.missing_images: skip drops them)")
        if missing:
            logger.warning("%d image(s) of %s are missing and skipped", len(missing), self.ann_file)
        self.ids = [i for i in ids if i not in set(missing)]
        if train and not self.ids:
            raise DataError(f"{self.ann_file} has no image with annotations to train on")

    def __len__(self) -> int:
        return len(self.ids)

    def annotations(self, image_id: int) -> list[dict[str, Any]]:
        return self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=None))

    def joints(self, annotations: Sequence[dict[str, Any]]) -> np.ndarray:
        """``(P, K, 3)`` keypoints of the annotations that are no crowd or have keypoints (official)."""
        kept = [a for a in annotations if not a.get("iscrowd", 0) or a.get("num_keypoints", 0) > 0]
        k = self.meta.num_keypoints
        if not kept:
            return np.zeros((0, k, 3))
        return np.stack([_check_keypoints(a, k, self.ann_file) for a in kept])

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_id = self.ids[index]
        info = self.coco.imgs[image_id]
        image = read_image(_image_path(self.image_dir, info))
        if not self.train:
            return {"image_id": image_id, "image": image}
        anns = self.annotations(image_id)
        mask = ignore_mask(anns, *image.shape[:2])
        rng = _sample_rng()
        image, masks, joints = random_affine(image, mask, self.joints(anns), self.input_size, self.output_sizes,
                                             self.augment, rng)
        if rng.random() < self.augment.flip_prob:
            image, masks, joints = _flip(image, masks, joints, self.output_sizes, self.meta.flip_index)
        heatmaps = [heatmap_targets(j, s, self.sigma) for j, s in zip(joints, self.output_sizes, strict=True)]
        indices = [tag_indices(j, s, self.max_people, self.tag_per_joint)
                   for j, s in zip(joints, self.output_sizes, strict=True)]
        return {
            "image": to_input_tensor(image),
            "heatmaps": [torch.from_numpy(h) for h in heatmaps],
            "masks": [torch.from_numpy(m) for m in masks],
            "joints": [torch.from_numpy(i) for i in indices],
        }


def bottomup_collate(items: list[dict[str, Any]]) -> Any:
    """Training items are stacked; validation items (whole images of different sizes) stay a list."""
    return default_collate(items) if "heatmaps" in items[0] else items
