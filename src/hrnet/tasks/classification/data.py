"""ImageNet-style classification data: a folder tree or a list file of (image, label), and the official
train/val transforms.

Two sources give the same samples (a file path and a class index):

- a folder ``split/<class name>/**/<image>`` (the ImageNet layout, read as torchvision's ``ImageFolder``
  does: classes are the sorted sub-folder names, files are walked in sorted order);
- a list file (``.csv``, ``.txt``, ...) with one ``path label`` or ``path,label`` line per image, the
  path relative to the dataset root (or absolute), the label a class index or a class name.

Images are read as RGB (:func:`hrnet.media.read_image`) and handed to the torchvision transforms as PIL
images, so they behave as the official code's (``RandomResizedCrop`` + flip for training; resize to
``size / 0.875`` + center crop for validation, then ImageNet normalisation).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode, v2

from ...errors import DataError
from ...media import IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD, is_image_file, read_image

__all__ = [
    "IMAGE_SUFFIXES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "is_image_file",
    "read_image",
    "read_class_names",
    "folder_classes",
    "scan_folder",
    "read_list_file",
    "list_classes",
    "ClassificationDataset",
    "train_transforms",
    "eval_transforms",
]

logger = logging.getLogger(__name__)

_HEADER_WORDS = {"path", "file", "filename", "file_name", "image", "image_path"}


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a text file, one per line (blank lines ignored); line ``i`` names class ``i``.

    A line may also be ``wnid name`` or ``index name`` as in common ImageNet label files; then the
    whole line is kept as the name.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"class-names file not found: {path}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DataError(f"class-names file {path} is empty")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"class-names file {path} names a class twice: {duplicates[:5]}")
    return names


def folder_classes(folder: str | Path) -> list[str]:
    """The sorted sub-folder names of ``folder`` (torchvision ``ImageFolder.find_classes``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"dataset folder not found: {folder}")
    names = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    if not names:
        raise DataError(f"dataset folder {folder} has no class sub-folders (expected {folder}/<class name>/<image>)")
    return names


def _warn_empty_classes(empty: Sequence[str], num_classes: int, where: str, consequence: str = "") -> None:
    """One warning with the count and the first names of the classes that have no images."""
    if empty:
        more = " ..." if len(empty) > 10 else ""
        logger.warning("%d of %d classes have no images %s: %s%s.%s", len(empty), num_classes, where,
                       ", ".join(empty[:10]), more, consequence)


def scan_folder(folder: str | Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    """``(image path, class index)`` of every image under ``folder/<class>/``, in ImageFolder order.

    ``classes`` fixes the class indices (e.g. those of the train split). A sub-folder that is not one of
    ``classes`` is an error; classes without any image, and files that are not images (by suffix), are
    skipped and reported in one warning each, with their count.
    """
    folder = Path(folder)
    present = folder_classes(folder)
    index = {name: i for i, name in enumerate(classes)}
    unknown = [name for name in present if name not in index]
    if unknown:
        raise DataError(
            f"{folder} has class folder(s) {unknown[:5]} that are not among the {len(classes)} "
            f"classes of this dataset (e.g. {list(classes[:3])})"
        )
    samples: list[tuple[Path, int]] = []
    empty, other_files = [], []
    for name in classes:
        before = len(samples)
        for root, _, files in sorted(os.walk(folder / name, followlinks=True)):
            samples.extend((Path(root) / f, index[name]) for f in sorted(files) if is_image_file(f))
            other_files.extend(Path(root) / f for f in sorted(files) if not is_image_file(f))
        if len(samples) == before:
            empty.append(name)
    _warn_empty_classes(empty, len(classes), f"under {folder}", " They keep their class index.")
    if other_files:
        logger.warning("skipped %d file(s) under %s that are not images (by suffix), e.g. %s", len(other_files),
                       folder, other_files[0])
    if not samples:
        raise DataError(f"no images found under {folder} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return samples


def read_list_file(path: str | Path) -> list[tuple[str, str]]:
    """``(path, label)`` rows of a list file: ``path,label`` (CSV) or ``path label`` per line.

    A first row whose path column is a header word (``path``, ``file``, ``image`` ...) is skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"list file not found: {path}")
    text = path.read_text().splitlines()
    rows = []
    for line_no, line in enumerate(text, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = next(csv.reader([line])) if "," in line else line.split()
        fields = [f.strip() for f in fields]
        if len(fields) < 2 or not fields[0] or not fields[1]:
            raise DataError(f"{path}, line {line_no}: expected 'path,label' or 'path label', got {line!r}")
        if not rows and fields[0].lower() in _HEADER_WORDS:
            continue
        rows.append((fields[0], fields[1]))
    if not rows:
        raise DataError(f"list file {path} holds no samples")
    return rows


def list_classes(rows: Sequence[tuple[str, str]]) -> list[str]:
    """Class names implied by a list file: its sorted label names, or ``0..max`` when labels are indices."""
    labels = [label for _, label in rows]
    if all(label.isdigit() for label in labels):
        return [str(i) for i in range(max(int(label) for label in labels) + 1)]
    return sorted(set(labels))


def _list_samples(path: Path, root: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    rows = read_list_file(path)
    index = {name: i for i, name in enumerate(classes)}
    numeric = all(label.isdigit() for _, label in rows)
    samples = []
    for file, label in rows:
        if numeric:
            target = int(label)
            if target >= len(classes):
                raise DataError(f"{path}: label {target} of {file} is out of range for {len(classes)} classes")
        elif label in index:
            target = index[label]
        else:
            raise DataError(f"{path}: label {label!r} of {file} is not a known class (e.g. {list(classes[:3])})")
        samples.append((root / file, target))
    counts = torch.bincount(torch.tensor([t for _, t in samples]), minlength=len(classes))
    empty = [classes[i] for i in torch.nonzero(counts == 0).flatten().tolist()]
    _warn_empty_classes(empty, len(classes), f"in {path}")
    return samples


class ClassificationDataset(Dataset):
    """Images and class indices from a folder tree or a list file (see the module docstring).

    ``source`` is a folder or a list file; ``root`` is what list-file paths are relative to. Items are
    ``{"image": transformed image, "label": class index, "index": sample index}``.
    """

    def __init__(
        self,
        source: str | Path,
        classes: Sequence[str],
        transform: Any = None,
        root: str | Path | None = None,
    ) -> None:
        self.source = Path(source)
        self.classes = list(classes)
        self.transform = transform
        if self.source.is_dir():
            self.samples = scan_folder(self.source, self.classes)
        elif self.source.is_file():
            self.samples = _list_samples(self.source, Path(root) if root else self.source.parent, self.classes)
        else:
            raise DataError(
                f"dataset split not found: {self.source} (expected a folder of class folders or a list file)"
            )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, label = self.samples[index]
        image = Image.fromarray(read_image(path))
        if self.transform is not None:
            image = self.transform(image)
        return {"image": image, "label": label, "index": index}


def _to_normalised_tensor(mean: Sequence[float], std: Sequence[float]) -> list:
    return [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def train_transforms(
    size: int = 224,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    hflip: float = 0.5,
    interpolation: str = "bilinear",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """The official training preset: ``RandomResizedCrop(size)``, horizontal flip, ImageNet normalisation."""
    steps = [v2.RandomResizedCrop(size, scale=scale, ratio=ratio, interpolation=InterpolationMode(interpolation))]
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(hflip))
    return v2.Compose(steps + _to_normalised_tensor(mean, std))


def eval_transforms(
    size: int = 224,
    resize_size: int | None = None,
    interpolation: str = "bilinear",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """The official validation preset: shorter side to ``resize_size`` (default ``int(size / 0.875)``,
    256 for 224), ``CenterCrop(size)``, ImageNet normalisation."""
    resize_size = int(size / 0.875) if resize_size is None else resize_size
    steps = [v2.Resize(resize_size, interpolation=InterpolationMode(interpolation)), v2.CenterCrop(size)]
    return v2.Compose(steps + _to_normalised_tensor(mean, std))
