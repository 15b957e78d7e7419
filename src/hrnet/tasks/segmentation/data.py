"""Segmentation datasets in their official folder layouts, plus a generic folder layout.

Every dataset is a list of :class:`Sample` (image path, label path) and a 256-entry lookup table that
turns the raw values of its label PNGs into training class ids (``ignore_index`` for "not evaluated").
A raw value the table does not know is an error naming the file and the value, never a silent class.

Items are dicts: ``image`` (3, H, W) float32 normalised RGB, ``label`` (H, W) int64, ``name``; evaluation
items also carry ``pad`` (bottom, right padding added by the evaluation resize, removed from the
prediction before it is resized to the label). Training items come out of the dataset's official
augmentation recipe (:meth:`SegmentationDataset.build_train_transform`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ...errors import DataError
from ...io import read_structured
from ...media import IMAGE_SUFFIXES, image_files, read_image
from .classes import (
    ADE20K_CLASSES,
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    IGNORE_INDEX,
    LIP_CLASSES,
    LIP_FLIP_PAIRS,
    PASCAL_CONTEXT_59_CLASSES,
    PASCAL_CONTEXT_60_CLASSES,
    cityscapes_label_to_train_lut,
    official_palette,
)
from .transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    RandomBrightness,
    RandomColorJitter,
    RandomFlip,
    RandomScaleCrop,
    ResizeFixed,
    ResizeShortSide,
    normalize_image,
    resize_long_side,
    resize_short_side,
    resize_to,
)

__all__ = [
    "Sample",
    "TrainAugment",
    "EvalResize",
    "read_image",
    "read_label",
    "SegmentationDataset",
    "CityscapesDataset",
    "LIPDataset",
    "PascalContextDataset",
    "ADE20KDataset",
    "FolderDataset",
    "DATASETS",
    "load_class_list",
    "collate_segmentation",
]


@dataclass(frozen=True)
class Sample:
    name: str
    image: Path
    label: Path | None


@dataclass(frozen=True)
class TrainAugment:
    """Parameters of the training recipe; each dataset arranges them in its official order."""

    crop_size: tuple[int, int]
    base_size: int | None
    multi_scale: bool = True
    scale_factor: int = 16
    scale_range: tuple[float, float] | None = None
    flip: bool = True
    brightness_shift: int = 0
    #: (brightness, contrast, saturation) jitter strengths; None = off (the official recipes have none)
    color_jitter: tuple[float, float, float] | None = None
    ignore_index: int = IGNORE_INDEX

    def scale_crop(self) -> list:
        """The official ``gen_sample``: without ``multi_scale`` it neither rescales nor crops."""
        if not self.multi_scale:
            return []
        return [RandomScaleCrop(self.crop_size, self.base_size, self.scale_factor, self.scale_range, self.ignore_index)]

    def brightness(self) -> list:
        """The photometric steps: official random brightness, then the optional colour jitter."""
        steps = [RandomBrightness(self.brightness_shift)] if self.brightness_shift > 0 else []
        return steps + ([RandomColorJitter(*self.color_jitter)] if self.color_jitter else [])


@dataclass(frozen=True)
class EvalResize:
    """How an evaluation image is resized before inference; its label keeps the original size.

    ``none``: as is (Cityscapes); ``fixed``: to ``size = (h, w)`` (LIP 473x473); ``short_side``: short side
    to ``size`` and padded to a multiple of ``fit_stride`` with the mean colour (PASCAL-Context, ADE20K);
    ``long_side``: long side to ``size``.
    """

    mode: Literal["none", "fixed", "short_side", "long_side"] = "none"
    size: int | tuple[int, int] | None = None
    fit_stride: int | None = None

    def __call__(self, image: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN):
        """Returns ``(image, (pad_h, pad_w))``."""
        if self.mode == "none":
            return image, (0, 0)
        if self.mode == "fixed":
            return resize_to(image, tuple(self.size))[0], (0, 0)
        if self.mode == "long_side":
            return resize_long_side(image, int(self.size))[0], (0, 0)
        image, _, pad = resize_short_side(image, int(self.size), fit_stride=self.fit_stride, mean=mean)
        return image, pad


def read_label(path: str | Path) -> np.ndarray:
    """A label map as an integer ``(H, W)`` array of raw values.

    Single-channel PNGs (mode ``L``) and palette PNGs (mode ``P``) give their stored indices (as the
    official ``Image.open(...).convert('P')``); 16-bit PNGs give int32. Colour label images are refused.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label file not found: {path}")
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode in ("L", "P"):
                return np.array(img, dtype=np.uint8)
            if mode in ("I", "I;16", "I;16B", "I;16L"):
                return np.array(img, dtype=np.int32)
    except OSError as e:
        raise DataError(f"cannot read label image {path}: {e}") from e
    raise DataError(
        f"label image {path} has PIL mode {mode!r}; expected a single-channel (L, P or 16-bit) PNG of class ids"
    )


def load_class_list(path: str | Path) -> tuple[list[str], np.ndarray, int]:
    """``classes.json`` of the folder layout -> (names, ``(K, 3)`` RGB palette, ignore index).

    Format: ``{"classes": [{"name": ..., "color": [r, g, b]}, ...], "ignore_index": 255}``; a missing
    colour gets the official palette colour of its id.
    """
    path = Path(path)
    spec = read_structured(path, "class list", DataError)
    entries = spec.get("classes") if isinstance(spec, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected a non-empty list under key 'classes'")
    ignore = spec.get("ignore_index", IGNORE_INDEX)
    if not isinstance(ignore, int) or not 0 <= ignore <= 255:
        raise DataError(f"{path}: 'ignore_index' must be an integer in 0..255, got {ignore!r}")
    default = official_palette(len(entries))
    names, colours = [], []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise DataError(f"{path}: classes[{i}] needs a string 'name'")
        colour = entry.get("color", default[i].tolist())
        if not (
            isinstance(colour, list) and len(colour) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in colour)
        ):
            raise DataError(f"{path}: classes[{i}] ({entry['name']!r}) 'color' must be [r, g, b] in 0..255")
        names.append(entry["name"])
        colours.append(colour)
    if len(names) > ignore:
        raise DataError(f"{path}: {len(names)} classes collide with ignore_index {ignore}")
    return names, np.array(colours, dtype=np.uint8), ignore


def _identity_lut(num_classes: int, ignore_index: int) -> np.ndarray:
    lut = np.full(256, -1, dtype=np.int16)
    lut[:num_classes] = np.arange(num_classes)
    lut[ignore_index] = ignore_index
    return lut


def _reduce_zero_lut(num_classes: int, ignore_index: int) -> np.ndarray:
    """Raw 0 ("other"/background) -> ignore, raw k -> k - 1 (the official ``reduce_zero_label``)."""
    lut = np.full(256, -1, dtype=np.int16)
    lut[0] = ignore_index
    lut[1 : num_classes + 1] = np.arange(num_classes)
    return lut


class SegmentationDataset(Dataset):
    """Samples + label lookup table + class meta; ``train=True`` applies the augmentation recipe."""

    #: short dataset name used in configs and messages
    kind: ClassVar[str] = ""

    def __init__(
        self,
        samples: Sequence[Sample],
        classes: Sequence[str],
        palette: np.ndarray,
        label_lut: np.ndarray,
        *,
        train: bool = False,
        augment: TrainAugment | None = None,
        eval_resize: EvalResize | None = None,
        ignore_index: int = IGNORE_INDEX,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        location: str = "",
    ) -> None:
        if not samples:
            raise DataError(f"no samples found for {self.kind or 'dataset'} {location}".rstrip())
        self.samples = list(samples)
        self.classes = list(classes)
        self.palette = np.asarray(palette, dtype=np.uint8)
        self.label_lut = label_lut
        self.train = train
        self.ignore_index = ignore_index
        self.mean, self.std = tuple(mean), tuple(std)
        self.eval_resize = eval_resize or EvalResize()
        self.transform = self.build_train_transform(augment) if train and augment is not None else None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def build_train_transform(self, aug: TrainAugment) -> Compose:
        """The official order (Cityscapes, folder): rescale + crop, brightness, flip."""
        return Compose([*aug.scale_crop(), *aug.brightness(), *self._flip(aug)])

    def _flip(self, aug: TrainAugment) -> list:
        return [RandomFlip(0.5)] if aug.flip else []

    def encode_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Raw label values -> class ids (``uint8``); unknown values raise ``DataError`` naming the file."""
        if raw.min(initial=0) < 0 or raw.max(initial=0) > 255:
            bad = int(raw.max()) if raw.max() > 255 else int(raw.min())
            raise DataError(
                f"{path}: label value {bad} is outside 0..255 and not a class id of this "
                f"{self.num_classes}-class dataset"
            )
        raw = raw.astype(np.uint8, copy=False)
        present = np.flatnonzero(np.bincount(raw.ravel(), minlength=256))
        unknown = present[self.label_lut[present] < 0]
        if unknown.size:
            raise DataError(
                f"{path}: label value {int(unknown[0])} is not valid for the {self.num_classes}-class "
                f"{self.kind or 'segmentation'} dataset (neither a class id nor the ignore value "
                f"{self.ignore_index}); unknown values in this file: {unknown.tolist()}"
            )
        return self.label_lut[raw].astype(np.uint8)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The BGR image and its encoded label (``None`` for an unlabelled split), sizes checked."""
        sample = self.samples[index]
        image = read_image(sample.image, "bgr")
        if sample.label is None:
            return image, None
        label = self.encode_label(read_label(sample.label), sample.label)
        if label.shape != image.shape[:2]:
            raise DataError(
                f"image {sample.image} is {image.shape[1]}x{image.shape[0]} but its label "
                f"{sample.label} is {label.shape[1]}x{label.shape[0]} (width x height)"
            )
        return image, label

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, label = self.load(index)
        name = self.samples[index].name
        if self.train:
            if label is None:
                raise DataError(f"sample {name!r} has no label file and cannot be used for training")
            if self.transform is not None:
                rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
                image, label = self.transform(image, label, rng)
            return {
                "image": self._to_tensor(image),
                "label": torch.from_numpy(label.astype(np.int64)),
                "name": name,
            }
        resized, pad = self.eval_resize(image, self.mean)
        item = {
            "image": self._to_tensor(resized),
            "name": name,
            "pad": torch.tensor(pad),
            "size": torch.tensor(image.shape[:2]),
        }
        if label is not None:
            item["label"] = torch.from_numpy(label.astype(np.int64))
        return item

    def _to_tensor(self, image_bgr: np.ndarray) -> torch.Tensor:
        rgb = normalize_image(image_bgr, self.mean, self.std)
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def _check_labels_exist(samples: list[Sample], what: str) -> list[Sample]:
    for s in samples:
        if s.label is not None and not s.label.is_file():
            raise DataError(f"label file not found for {what} image {s.image}: expected {s.label}")
    return samples


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{what} folder not found: {path}")
    return path


class CityscapesDataset(SegmentationDataset):
    """Cityscapes: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
    ``gtFine/<split>/<city>/*_gtFine_labelIds.png``; labelIds -> 19 trainIds, the rest ignored.
    The ``test`` split has no public labels and is loaded image-only."""

    kind = "cityscapes"

    def __init__(self, root: str | Path, split: str = "train", **kwargs: Any) -> None:
        root = Path(root)
        image_dir = _require_dir(root / "leftImg8bit" / split, "Cityscapes image")
        labelled = split != "test"
        samples = []
        for image in sorted(image_dir.glob("*/*_leftImg8bit.png")):
            stem = image.name[: -len("_leftImg8bit.png")]
            label = root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_labelIds.png"
            samples.append(Sample(stem, image, label if labelled else None))
        ignore = kwargs.pop("ignore_index", IGNORE_INDEX)
        super().__init__(
            _check_labels_exist(samples, "Cityscapes"),
            CITYSCAPES_CLASSES,
            CITYSCAPES_PALETTE,
            cityscapes_label_to_train_lut(ignore),
            ignore_index=ignore,
            location=f"in {image_dir} (*/*_leftImg8bit.png)",
            **kwargs,
        )


class LIPDataset(SegmentationDataset):
    """LIP: ``TrainVal_images/<split>_images/<id>.jpg``, ``TrainVal_parsing_annotations/<split>_segmentations/
    <id>.png`` and the id list ``<split>_id.txt`` (all images of the folder when the list is missing).
    Training flips first, exchanging left/right arm, leg and shoe labels, then resizes to the crop size."""

    kind = "lip"

    def __init__(self, root: str | Path, split: str = "train", **kwargs: Any) -> None:
        root = Path(root)
        image_dir = _require_dir(root / "TrainVal_images" / f"{split}_images", "LIP image")
        label_dir = root / "TrainVal_parsing_annotations" / f"{split}_segmentations"
        id_list = root / f"{split}_id.txt"
        if id_list.is_file():
            ids = [line.strip() for line in id_list.read_text().splitlines() if line.strip()]
        else:
            ids = sorted(p.stem for p in image_dir.glob("*.jpg"))
        samples = [Sample(i, image_dir / f"{i}.jpg", label_dir / f"{i}.png") for i in ids]
        for s in samples:
            if not s.image.is_file():
                raise DataError(f"LIP image {s.image} listed in {id_list} not found")
        ignore = kwargs.pop("ignore_index", IGNORE_INDEX)
        super().__init__(
            _check_labels_exist(samples, "LIP"),
            LIP_CLASSES,
            official_palette(len(LIP_CLASSES)),
            _identity_lut(len(LIP_CLASSES), ignore),
            ignore_index=ignore,
            location=f"in {id_list if id_list.is_file() else image_dir}",
            **kwargs,
        )

    def build_train_transform(self, aug: TrainAugment) -> Compose:
        flip = [RandomFlip(0.5, LIP_FLIP_PAIRS)] if aug.flip else []
        return Compose([*flip, ResizeFixed(aug.crop_size), *aug.scale_crop(), *aug.brightness()])


def short_side_train_transform(self: SegmentationDataset, aug: TrainAugment) -> Compose:
    """PASCAL-Context / ADE20K: short side to ``base_size``, rescale + crop, brightness, flip."""
    return Compose([ResizeShortSide(aug.base_size), *aug.scale_crop(), *aug.brightness(), *self._flip(aug)])


class PascalContextDataset(SegmentationDataset):
    """PASCAL-Context in the common PNG layout: ``JPEGImages/<id>.jpg``, ``SegmentationClassContext/<id>.png``
    (0 = background, 1-59 = classes) and ``ImageSets/SegmentationContext/<split>.txt``. ``root`` is
    ``VOCdevkit/VOC2010`` or a folder containing it. ``num_classes=59`` ignores the background (labels
    shift down by one), ``60`` keeps it as class 0."""

    kind = "pascal_context"

    def __init__(self, root: str | Path, split: str = "train", num_classes: int = 59, **kwargs: Any) -> None:
        root = Path(root)
        if not (root / "JPEGImages").is_dir() and (root / "VOCdevkit" / "VOC2010").is_dir():
            root = root / "VOCdevkit" / "VOC2010"
        if num_classes not in (59, 60):
            raise DataError(f"PASCAL-Context has 59 or 60 classes, got num_classes={num_classes}")
        id_list = root / "ImageSets" / "SegmentationContext" / f"{split}.txt"
        if not id_list.is_file():
            raise DataError(f"PASCAL-Context split list not found: {id_list}")
        ids = [line.strip() for line in id_list.read_text().splitlines() if line.strip()]
        samples = [
            Sample(i, root / "JPEGImages" / f"{i}.jpg", root / "SegmentationClassContext" / f"{i}.png") for i in ids
        ]
        ignore = kwargs.pop("ignore_index", IGNORE_INDEX)
        classes = PASCAL_CONTEXT_59_CLASSES if num_classes == 59 else PASCAL_CONTEXT_60_CLASSES
        lut = _reduce_zero_lut(59, ignore) if num_classes == 59 else _identity_lut(60, ignore)
        super().__init__(
            _check_labels_exist(samples, "PASCAL-Context"),
            classes,
            official_palette(num_classes),
            lut,
            ignore_index=ignore,
            location=f"in {id_list}",
            **kwargs,
        )

    build_train_transform = short_side_train_transform


class ADE20KDataset(SegmentationDataset):
    """ADE20K SceneParsing: ``ADEChallengeData2016/images/<split>/*.jpg`` and ``annotations/<split>/*.png``
    (0 = other, ignored; 1-150 = classes, shifted down by one). ``split`` is ``training``/``validation``
    (``train``/``val`` accepted); ``root`` is ``ADEChallengeData2016`` or its parent."""

    kind = "ade20k"
    SPLITS: ClassVar[dict[str, str]] = {"train": "training", "val": "validation"}

    def __init__(self, root: str | Path, split: str = "training", **kwargs: Any) -> None:
        root = Path(root)
        if not (root / "images").is_dir() and (root / "ADEChallengeData2016").is_dir():
            root = root / "ADEChallengeData2016"
        split = self.SPLITS.get(split, split)
        image_dir = _require_dir(root / "images" / split, "ADE20K image")
        samples = [
            Sample(p.stem, p, root / "annotations" / split / f"{p.stem}.png") for p in sorted(image_dir.glob("*.jpg"))
        ]
        ignore = kwargs.pop("ignore_index", IGNORE_INDEX)
        super().__init__(
            _check_labels_exist(samples, "ADE20K"),
            ADE20K_CLASSES,
            official_palette(150),
            _reduce_zero_lut(150, ignore),
            ignore_index=ignore,
            location=f"in {image_dir} (*.jpg)",
            **kwargs,
        )

    build_train_transform = short_side_train_transform


class FolderDataset(SegmentationDataset):
    """Generic layout: ``images/<split>/<id>.<ext>``, ``labels/<split>/<id>.png`` (class ids,
    ``ignore_index`` from ``classes.json``) and ``classes.json`` with the class names and colours
    (see :func:`load_class_list`)."""

    kind = "folder"

    def __init__(self, root: str | Path, split: str = "train", **kwargs: Any) -> None:
        root = Path(root)
        classes, palette, ignore = load_class_list(root / "classes.json")
        kwargs.pop("ignore_index", None)
        image_dir = _require_dir(root / "images" / split, "image")
        label_dir = root / "labels" / split
        samples = [
            Sample(p.stem, p, label_dir / f"{p.stem}.png")
            for p in image_files(image_dir)
        ]
        super().__init__(
            _check_labels_exist(samples, "folder-dataset"),
            classes,
            palette,
            _identity_lut(len(classes), ignore),
            ignore_index=ignore,
            location=f"in {image_dir} (no {'/'.join(IMAGE_SUFFIXES)} files)",
            **kwargs,
        )


DATASETS: dict[str, type[SegmentationDataset]] = {
    cls.kind: cls for cls in (CityscapesDataset, LIPDataset, PascalContextDataset, ADE20KDataset, FolderDataset)
}


def collate_segmentation(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors of equal shape; keep a list where sizes differ (evaluation at native resolution)."""
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        same_shape = all(isinstance(v, torch.Tensor) and v.shape == values[0].shape for v in values)
        batch[key] = torch.stack(values) if same_shape else values
    return batch
