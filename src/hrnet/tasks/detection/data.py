"""COCO-format detection data: images, boxes, labels and instance masks as torchvision detectors take them.

A sample is ``(image, target)``: ``image`` a float (3, H, W) tensor in [0, 1] and ``target`` a dict with
``boxes`` (N, 4) XYXY pixels, ``labels`` (N,) contiguous labels ``1..K``, ``image_id`` and, when masks
are asked for, ``masks`` (N, H, W) uint8, and, with a stuff-map folder (COCO-Stuff's ``stuffthingmaps``,
for HTC's semantic branch), ``semantic`` (H, W) int64 labels. Crowd regions are not training targets
(torchvision has no "ignore" boxes; mmdetection's HRNet configs do not use them either) -- the evaluation
reads them from the annotation file. Training images resize (shorter side ``min_size``, longer at most
``max_size``) and flip here; evaluation images stay at their size and the model resizes them and maps
its predictions back, so they come out in the annotation file's coordinates.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ...errors import DataError
from ...media import read_image

__all__ = [
    "CategoryMap",
    "CocoDetection",
    "load_coco",
    "read_image",
    "image_tensor",
    "annotation_mask",
    "SemanticMap",
    "read_stuff_map",
    "train_transforms",
    "eval_transforms",
    "collate_detection",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CategoryMap:
    """COCO category ids (any integers, e.g. 1-90 with gaps) <-> contiguous labels 1..K (0 = background)."""

    cat_ids: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def from_categories(cls, categories: Sequence[dict[str, Any]]) -> CategoryMap:
        ordered = sorted(categories, key=lambda c: c["id"])
        return cls(tuple(int(c["id"]) for c in ordered), tuple(str(c.get("name", c["id"])) for c in ordered))

    def __len__(self) -> int:
        return len(self.cat_ids)

    def __contains__(self, cat_id: object) -> bool:
        try:
            return cat_id in self._labels
        except TypeError:  # an unhashable value, e.g. a list
            return False

    @cached_property
    def _labels(self) -> dict[int, int]:
        return {cat_id: i + 1 for i, cat_id in enumerate(self.cat_ids)}

    def label(self, cat_id: int) -> int:
        return self._labels[cat_id]

    def cat_id(self, label: int) -> int:
        return self.cat_ids[label - 1]

    def name(self, label: int) -> str:
        return self.names[label - 1]


def load_coco(ann_file: str | Path) -> COCO:
    """A pycocotools ``COCO`` index of ``ann_file`` (its progress prints silenced); raises ``DataError``
    naming the file when it is missing, not JSON, or lacks ``images``/``annotations``/``categories``."""
    ann_file = Path(ann_file)
    if not ann_file.is_file():
        raise DataError(f"annotation file not found: {ann_file}")
    try:
        dataset = json.loads(ann_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"annotation file {ann_file} is not valid JSON: {e}") from None
    missing = [key for key in ("images", "annotations", "categories") if key not in dataset]
    if not isinstance(dataset, dict) or missing:
        raise DataError(f"annotation file {ann_file} is not COCO instances format: missing {missing}")
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def image_tensor(image: np.ndarray) -> Tensor:
    """An RGB ``(H, W, 3)`` uint8 array as the ``(3, H, W)`` uint8 tensor torchvision's detectors take."""
    return torch.from_numpy(image).permute(2, 0, 1).contiguous()


def annotation_mask(ann: dict[str, Any], height: int, width: int) -> np.ndarray:
    """The (H, W) uint8 mask of a COCO annotation's ``segmentation``: polygons, uncompressed or compressed
    RLE. Raises ``DataError`` naming the annotation when it has none or it cannot be read."""
    segmentation = ann.get("segmentation")
    try:
        if isinstance(segmentation, list) and segmentation:
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        elif isinstance(segmentation, dict):
            rle = segmentation
        else:
            raise ValueError("no polygon or RLE")
        return mask_utils.decode(rle)
    except (ValueError, TypeError, IndexError) as e:
        raise DataError(f"annotation {ann.get('id')} (image {ann.get('image_id')}) has an unreadable "
                        f"'segmentation': {e}") from None


class SemanticMap(tv_tensors.TVTensor):
    """An (H, W) label map that resizes (nearest) and flips with the image. Not a ``Mask``: torchvision's
    ``SanitizeBoundingBoxes`` would index it as one mask per box."""

    def __new__(cls, data: Any) -> SemanticMap:
        return cls._to_tensor(data, dtype=None, device=None, requires_grad=False).as_subclass(cls)


@TF.register_kernel(TF.resize, SemanticMap)
def _resize_semantic(inpt: SemanticMap, size: Any, *args: Any, max_size: int | None = None, **kwargs: Any
                     ) -> SemanticMap:
    return tv_tensors.wrap(TF.resize_mask(inpt.as_subclass(Tensor), size, max_size=max_size), like=inpt)


@TF.register_kernel(TF.horizontal_flip, SemanticMap)
def _flip_semantic(inpt: SemanticMap) -> SemanticMap:
    return tv_tensors.wrap(TF.horizontal_flip_mask(inpt.as_subclass(Tensor)), like=inpt)


def read_stuff_map(path: str | Path, height: int, width: int) -> np.ndarray:
    """The (H, W) uint8 labels of a COCO-Stuff ``stuffthingmaps`` PNG (0-181, 255 unlabeled); ``DataError``
    naming the file if it is missing, unreadable, not single-channel or not ``height`` x ``width``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"stuff map not found: {path}")
    labels = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2 or labels.dtype != np.uint8:
        raise DataError(f"stuff map {path} is not a single-channel 8-bit PNG of labels")
    if labels.shape != (height, width):
        raise DataError(f"stuff map {path} is {labels.shape[1]}x{labels.shape[0]} but its image is {width}x{height}")
    return labels


def _box_xyxy(ann: dict[str, Any], height: int, width: int) -> list[float]:
    """The annotation's box as XYXY clipped to the image."""
    bbox = ann.get("bbox")
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise DataError(f"annotation {ann.get('id')} (image {ann.get('image_id')}) needs 'bbox' "
                        f"[x, y, w, h], got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    return [min(max(x, 0.0), width), min(max(y, 0.0), height),
            min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)]


class CocoDetection(Dataset):
    """A COCO instances file and its image folder, as ``(image, target)`` samples for torchvision detectors.

    Annotations whose box is under ``min_box_size`` pixels wide or high inside the image are skipped and
    counted (``num_degenerate``, logged once); an annotation whose ``category_id`` is not in
    ``categories`` is an error naming it. ``skip_empty`` drops images without any usable object (for
    training, as mmdetection does). ``stuff_dir`` is a folder of label-map PNGs named as the images
    (COCO-Stuff's ``stuffthingmaps/train2017/<image stem>.png``), read as the target's ``semantic``.
    """

    def __init__(self, ann_file: str | Path, image_dir: str | Path,
                 transforms: Callable[..., Any] | None = None, *, with_masks: bool = False,
                 skip_empty: bool = False, min_box_size: float = 1.0, stuff_dir: str | Path | None = None) -> None:
        self.ann_file = Path(ann_file)
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise DataError(f"image folder not found: {self.image_dir}")
        self.stuff_dir = None if stuff_dir is None else Path(stuff_dir)
        if self.stuff_dir is not None and not self.stuff_dir.is_dir():
            raise DataError(f"stuff-map folder not found: {self.stuff_dir} (COCO-Stuff's stuffthingmaps/<split>, "
                            "label PNGs named as the images)")
        self.coco = load_coco(self.ann_file)
        self.categories = CategoryMap.from_categories(self.coco.dataset["categories"])
        self.transforms = transforms if transforms is not None else eval_transforms()
        self.with_masks = with_masks
        self.num_degenerate = 0
        self._instances: dict[int, list[dict[str, Any]]] = {}
        for image_id, image in sorted(self.coco.imgs.items()):
            anns = self.coco.imgToAnns.get(image_id, [])
            kept = [ann for ann in anns if self._usable(ann, image, min_box_size)]
            if kept or not skip_empty:
                self._instances[image_id] = kept
        self.image_ids = list(self._instances)
        if self.num_degenerate:
            logger.warning("%s: skipped %d annotations with a box under %g px", self.ann_file,
                           self.num_degenerate, min_box_size)

    def _usable(self, ann: dict[str, Any], image: dict[str, Any], min_box_size: float) -> bool:
        if ann.get("category_id") not in self.categories:
            raise DataError(f"{self.ann_file}: annotation {ann.get('id')} (image {ann.get('image_id')}) has "
                            f"category_id {ann.get('category_id')!r}, which is not in 'categories' "
                            f"(ids {list(self.categories.cat_ids)})")
        if ann.get("iscrowd", 0):
            return False
        x1, y1, x2, y2 = _box_xyxy(ann, image["height"], image["width"])
        if x2 - x1 < min_box_size or y2 - y1 < min_box_size:
            self.num_degenerate += 1
            return False
        return True

    def __len__(self) -> int:
        return len(self.image_ids)

    def image_path(self, index: int) -> Path:
        return self.image_dir / self.coco.imgs[self.image_ids[index]]["file_name"]

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        height, width = info["height"], info["width"]
        path = self.image_path(index)
        image = image_tensor(read_image(path))
        if tuple(image.shape[1:]) != (height, width):
            raise DataError(f"image {path} is {image.shape[2]}x{image.shape[1]} but its annotation file "
                            f"{self.ann_file} says {width}x{height}")
        anns = self._instances[image_id]
        boxes = torch.tensor([_box_xyxy(a, height, width) for a in anns], dtype=torch.float32).reshape(-1, 4)
        labels = [self.categories.label(a["category_id"]) for a in anns]
        target: dict[str, Any] = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "image_id": image_id,
        }
        if self.with_masks:
            masks = np.stack([annotation_mask(a, height, width) for a in anns]) if anns else \
                np.zeros((0, height, width), np.uint8)
            target["masks"] = tv_tensors.Mask(torch.from_numpy(masks))
        if self.stuff_dir is not None:
            stem = Path(info["file_name"]).stem
            target["semantic"] = SemanticMap(torch.from_numpy(read_stuff_map(self.stuff_dir / f"{stem}.png",
                                                                             height, width)))
        image, target = self.transforms(tv_tensors.Image(image), target)
        if "semantic" in target:
            target["semantic"] = target["semantic"].as_subclass(Tensor).long()
        return image.as_subclass(Tensor), {k: v.as_subclass(Tensor) if isinstance(v, Tensor) else v
                                           for k, v in target.items()}


def train_transforms(min_size: int | tuple[int, int] = 800, max_size: int = 1333, flip_prob: float = 0.5
                     ) -> v2.Compose:
    """Resize keeping the aspect ratio (shorter side ``min_size``, longer at most ``max_size``, as
    mmdetection's ``img_scale=(1333, 800)``), flip horizontally with ``flip_prob``, scale to [0, 1].
    A ``(low, high)`` ``min_size`` draws the shorter side per image from ``low..high`` (multi-scale training,
    mmdetection's ``multiscale_mode='range'``)."""
    if isinstance(min_size, int):
        resize = v2.Resize(min_size, max_size=max_size, antialias=True)
    else:
        low, high = min_size
        resize = v2.RandomShortestSize(list(range(low, high + 1)), max_size=max_size, antialias=True)
    return v2.Compose([
        resize,
        v2.RandomHorizontalFlip(flip_prob),
        v2.SanitizeBoundingBoxes(min_size=1.0),
        v2.ToDtype(torch.float32, scale=True),
    ])


def eval_transforms() -> v2.Compose:
    """Only scale to [0, 1]: the detector resizes evaluation images itself and maps predictions back."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True)])


def collate_detection(batch: Sequence[tuple[Tensor, dict[str, Any]]]
                      ) -> tuple[list[Tensor], list[dict[str, Any]]]:
    """Images of different sizes stay a list: torchvision detectors pad them into one batch themselves."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
