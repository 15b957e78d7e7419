"""The classification task for the engine: ImageNet-style data, HRNet-W*-C models, top-1/top-5 accuracy.

A config names a ``cls_hrnet_*`` preset. ``num_classes`` is taken from the dataset (its classes file,
or the class folders / labels of its train split) unless ``model.overrides.num_classes`` sets it; the
two must agree. Mixup/CutMix (``data.mixup_alpha``, ``data.cutmix_alpha``) mix each training batch
inside :meth:`ClassificationTask.compute_loss`, so validation batches are never mixed.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field, field_validator
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from ...engine.config import StrictModel
from ...engine.distributed import all_gather_object, broadcast_object, is_main_process
from ...engine.task import Task, register_task
from ...errors import ConfigError, DataError
from ...io import write_json
from ...media import expand_inputs, read_image
from ...models.context import inference_context
from ...models.registry import build_model as build_preset
from ...models.registry import get_preset
from .data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClassificationDataset,
    eval_transforms,
    folder_classes,
    list_classes,
    read_class_names,
    read_list_file,
    train_transforms,
)
from .evaluation import topk_correct

__all__ = ["ClassificationDataConfig", "ClassificationLossConfig", "ClassificationTask"]

logger = logging.getLogger(__name__)


class ClassificationDataConfig(StrictModel):
    """``data:`` of a classification config. Defaults are the official ImageNet recipe."""

    root: Path
    #: train split: a folder of class folders, or a list file (``path,label`` lines), relative to ``root``
    train: str = "train"
    #: val split, as ``train``
    val: str = "val"
    #: optional file of class names, one per line (relative to ``root`` or absolute); line i = class i
    classes: Path | None = None
    #: side of the square training crop and of the validation center crop
    image_size: int = Field(224, ge=8)
    #: validation resize of the shorter side; None: ``int(image_size / 0.875)`` (256 for 224, official)
    resize_size: int | None = Field(None, ge=8)
    #: RandomResizedCrop area fraction and aspect-ratio ranges
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = Field(0.5, ge=0, le=1)
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: Beta(alpha, alpha) for Mixup / CutMix; 0 disables. When both are on, each batch picks one at random.
    mixup_alpha: float = Field(0.0, ge=0)
    cutmix_alpha: float = Field(0.0, ge=0)

    @field_validator("scale", "ratio")
    @classmethod
    def _range_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high:
            raise ValueError(f"expected (low, high) with 0 < low <= high, got {list(value)}")
        return value

    @field_validator("scale")
    @classmethod
    def _scale_is_a_fraction(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[1] > 1:
            raise ValueError(f"scale is a fraction of the image area, at most 1, got {list(value)}")
        return value


class ClassificationLossConfig(StrictModel):
    """``loss:`` of a classification config: cross-entropy, optionally with label smoothing."""

    label_smoothing: float = Field(0.0, ge=0, lt=1)


@register_task
class ClassificationTask(Task):
    """Image classification with HRNet-W*-C (ImageNet and any folder or list dataset)."""

    name = "classification"
    DataConfig = ClassificationDataConfig
    LossConfig = ClassificationLossConfig
    main_metric = "top1"

    # ---------------------------------------------------------------------------------------- classes

    def _path(self, relative: str | Path) -> Path:
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.data.root / path

    @functools.cached_property
    def class_names(self) -> list[str] | None:
        """Class names, from ``data.classes``, else the train split (folders or list labels), else the
        val split; ``None`` when none of them exists (e.g. predicting with a checkpoint alone)."""
        data = self.data
        if data.classes is not None:
            return read_class_names(self._path(data.classes))
        for split in (data.train, data.val):
            source = self._path(split)
            if source.is_dir():
                return folder_classes(source)
            if source.is_file():
                return list_classes(read_list_file(source))
        return None

    # ------------------------------------------------------------------------------------ model / data

    def build_model(self) -> nn.Module:
        name = self.cfg.model.name
        family = get_preset(name).family
        if family != "cls":
            raise ConfigError(f"model.name {name!r} is a {family} model; classification needs a cls_hrnet_* preset")
        overrides = dict(self.cfg.model.overrides)
        classes = self.class_names
        if classes is not None:
            wanted = overrides.setdefault("num_classes", len(classes))
            if wanted != len(classes):
                raise ConfigError(
                    f"model.overrides.num_classes is {wanted} but the dataset has {len(classes)} "
                    f"classes ({self.data.root}); remove the override or fix the data"
                )
        return build_preset(name, **overrides)

    def build_dataset(self, split: str) -> ClassificationDataset:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        data = self.data
        source = self._path(data.train if split == "train" else data.val)
        if not source.exists():
            raise DataError(f"data.{split}: {source} not found (expected a folder of class folders or a list file)")
        if split == "train":
            transform = train_transforms(
                data.image_size, data.scale, data.ratio, data.hflip, data.interpolation, data.mean, data.std
            )
        else:
            transform = self._eval_transform()
        return ClassificationDataset(source, self.class_names, transform, root=data.root)

    def _eval_transform(self) -> v2.Compose:
        data = self.data
        return eval_transforms(data.image_size, data.resize_size, data.interpolation, data.mean, data.std)

    # ----------------------------------------------------------------------------------- train / eval

    @functools.cached_property
    def _batch_mixer(self) -> v2.Transform | None:
        data = self.data
        num_classes = len(self.class_names)  # training always has a train split, hence class names
        mixers = []
        if data.mixup_alpha > 0:
            mixers.append(v2.MixUp(alpha=data.mixup_alpha, num_classes=num_classes))
        if data.cutmix_alpha > 0:
            mixers.append(v2.CutMix(alpha=data.cutmix_alpha, num_classes=num_classes))
        if not mixers:
            return None
        return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)

    def compute_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Cross-entropy (with ``loss.label_smoothing``) of the batch, mixed first when Mixup/CutMix is on;
        also the batch's top-1 accuracy when it is not mixed."""
        images, labels = batch["image"], batch["label"]
        if self._batch_mixer is not None:
            images, targets = self._batch_mixer(images, labels)
        else:
            targets = labels
        logits = model(images)
        loss = F.cross_entropy(logits.float(), targets, label_smoothing=self.loss_cfg.label_smoothing)
        extras = {}
        if self._batch_mixer is None:
            extras["top1"] = topk_correct(logits.detach(), labels, (1,))[0] / len(labels)
        return loss, extras

    def evaluate(self, model: nn.Module, loader: DataLoader, out_dir: Path) -> dict[str, float]:
        """Top-1/top-5 accuracy (fractions) and mean cross-entropy over the val split, gathered from every
        process; rank 0 writes ``predictions.json`` (each image's label, top-5 classes and scores)."""
        dataset: ClassificationDataset = loader.dataset
        records = []
        for batch in loader:
            logits, labels = model(batch["image"]).float().cpu(), batch["label"].cpu()
            losses = F.cross_entropy(logits, labels, reduction="none")
            scores, classes = logits.softmax(dim=1).topk(min(5, logits.shape[1]), dim=1)
            for i in range(len(logits)):
                records.append(
                    (
                        int(batch["index"][i]),
                        int(labels[i]),
                        classes[i].tolist(),
                        scores[i].tolist(),
                        float(losses[i]),
                    )
                )
        merged = sorted(r for part in all_gather_object(records) for r in part)
        metrics: dict[str, float] = {}
        if is_main_process():
            metrics = _accuracy_from_records(merged)
            predictions = [
                {
                    "file": str(dataset.samples[i][0]),
                    "label": label,
                    "top5": top,
                    "scores": [round(s, 6) for s in sc],
                }
                for i, label, top, sc, _ in merged
            ]
            write_json(Path(out_dir) / "predictions.json", {"classes": dataset.classes, "predictions": predictions})
            logger.info("top-1 %.4f, top-5 %.4f on %d images", metrics["top1"], metrics["top5"], len(merged))
        return broadcast_object(metrics)

    # ---------------------------------------------------------------------------------------- predict

    def classify(self, model: nn.Module, images: list[np.ndarray], topk: int = 5) -> tuple[Tensor, Tensor]:
        """``(probabilities, class indices)``, each ``(N, k)``, best first, of RGB ``uint8`` images, with the
        evaluation transform (resize, centre crop, normalisation)."""
        transform = self._eval_transform()
        device = next(model.parameters()).device
        batch = torch.stack([transform(Image.fromarray(image)) for image in images]).to(device)
        with inference_context(model):
            probabilities = model(batch).float().softmax(dim=1).cpu()
        return probabilities.topk(min(topk, probabilities.shape[1]), dim=1)

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list[Path]:
        """Classify images (files, or folders searched recursively): print each image's top-k classes with
        their probabilities and write them to ``predictions.json``. Options: ``topk`` (5), ``batch_size``
        (16), ``classes`` (a class-names file; default: the config's dataset, else class indices)."""
        topk = int(options.pop("topk", 5))
        batch_size = int(options.pop("batch_size", 16))
        classes_file = options.pop("classes", None)
        if options:
            raise ConfigError(f"unknown predict option(s) {sorted(options)}; known: topk, batch_size, classes")
        names = read_class_names(classes_file) if classes_file is not None else self.class_names
        num_classes = getattr(model, "num_classes", None)
        if names is not None and num_classes is not None and len(names) != num_classes:
            raise DataError(f"{len(names)} class names are given but the model predicts {num_classes} classes")
        files = expand_inputs(inputs, recursive=True)[0]
        results = []
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            scores, classes = self.classify(model, [read_image(path) for path in chunk], topk)
            for path, row_scores, row_classes in zip(chunk, scores.tolist(), classes.tolist(), strict=True):
                top = [
                    {"class": names[c] if names else str(c), "index": c, "score": round(s, 6)}
                    for c, s in zip(row_classes, row_scores, strict=True)
                ]
                results.append({"file": str(path), "top": top})
                print(format_prediction(path, top))
        target = Path(out_dir) / "predictions.json"
        write_json(target, results, indent=1)
        return [target]


def _accuracy_from_records(records: list[tuple]) -> dict[str, float]:
    count = len(records)
    top1 = sum(top[0] == label for _, label, top, _, _ in records)
    top5 = sum(label in top[:5] for _, label, top, _, _ in records)
    return {"top1": top1 / count, "top5": top5 / count, "loss": sum(r[4] for r in records) / count}


def format_prediction(path: Path, top: list[dict[str, Any]]) -> str:
    """``path`` then one ``rank. class  score`` line per class, e.g. ``  1. tabby cat  0.8731``."""
    width = max(len(t["class"]) for t in top)
    rows = [f"  {rank}. {t['class']:<{width}}  {t['score']:.4f}" for rank, t in enumerate(top, start=1)]
    return "\n".join([str(path), *rows])
