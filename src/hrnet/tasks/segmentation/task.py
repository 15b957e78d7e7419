"""The segmentation task: configs, datasets, loss, evaluation and prediction for HRNetV2 / HRNetV2+OCR.

Config sections (each strict about its keys):

* ``data:`` :class:`SegDataConfig` — which dataset, where, and the training augmentation; per-dataset
  defaults follow the official recipes (:data:`DATASET_DEFAULTS`);
* ``loss:`` :class:`SegLossConfig` — cross-entropy or OHEM, class weights, OCR balance weights;
* ``eval:`` :class:`SegEvalConfig` — test-time scales, flip, whole/sliding inference, fusion.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, field_validator, model_validator
from torch import Tensor, nn

from ...engine.config import EvalConfig, StrictModel
from ...engine.distributed import is_main_process
from ...engine.task import Task, register_task
from ...errors import ConfigError, DataError
from ...io import write_json
from ...media import expand_inputs, read_image, write_image
from ...models.context import inference_context
from .classes import (
    ADE20K_CLASSES,
    CITYSCAPES_CLASS_WEIGHTS,
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    CITYSCAPES_TRAIN_TO_LABEL_ID,
    IGNORE_INDEX,
    LIP_CLASSES,
    LIP_FLIP_PAIRS,
    PASCAL_CONTEXT_59_CLASSES,
    PASCAL_CONTEXT_60_CLASSES,
    official_palette,
)
from .data import (
    DATASETS,
    EvalResize,
    TrainAugment,
    collate_segmentation,
    load_class_list,
)
from .evaluation import confusion_matrix, reduce_confusion_matrix, segmentation_metrics
from .inference import InferenceMode, predict_scores
from .loss import SegmentationLoss, build_loss
from .transforms import IMAGENET_MEAN, IMAGENET_STD, normalize_image
from .visualize import overlay, write_iou_report

__all__ = [
    "DATASET_DEFAULTS",
    "SegDataConfig",
    "SegLossConfig",
    "SegEvalConfig",
    "SegmentationTask",
    "class_meta",
    "to_cityscapes_label_ids",
]

DatasetName = Literal["cityscapes", "lip", "pascal_context", "ade20k", "folder"]

#: the official recipe of each dataset: training crop (h, w), ``BASE_SIZE``, ``SCALE_FACTOR``; splits;
#: evaluation resize of the image; test-time inference mode, crop (``TEST.IMAGE_SIZE``) and base size
# fmt: off
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "cityscapes": dict(crop_size=(512, 1024), base_size=2048, scale_factor=16, train_split="train", val_split="val",
                       eval_resize="none", eval_size=None, eval_fit_stride=None,
                       mode="cityscapes", test_crop_size=(1024, 2048), test_base_size=2048),
    "lip": dict(crop_size=(473, 473), base_size=473, scale_factor=11, train_split="train", val_split="val",
                eval_resize="fixed", eval_size=(473, 473), eval_fit_stride=None,
                mode="base", test_crop_size=(473, 473), test_base_size=473),
    "pascal_context": dict(crop_size=(520, 520), base_size=520, scale_factor=16, train_split="train",
                           val_split="val", eval_resize="short_side", eval_size=520, eval_fit_stride=8,
                           mode="base", test_crop_size=(520, 520), test_base_size=520),
    "ade20k": dict(crop_size=(520, 520), base_size=520, scale_factor=11, train_split="training",
                   val_split="validation", eval_resize="short_side", eval_size=520, eval_fit_stride=8,
                   mode="base", test_crop_size=(520, 520), test_base_size=520),
    "folder": dict(crop_size=(512, 512), base_size=None, scale_factor=16, train_split="train", val_split="val",
                   eval_resize="none", eval_size=None, eval_fit_stride=None,
                   mode="whole", test_crop_size=None, test_base_size=None),
}
# fmt: on


class SegDataConfig(StrictModel):
    """``data:`` — the dataset and its training augmentation. Unset keys take the dataset's official value."""

    dataset: DatasetName
    root: Path
    train_split: str | None = None
    val_split: str | None = None
    #: PASCAL-Context: 59 (background ignored) or 60; other datasets have a fixed count
    num_classes: int | None = Field(None, ge=1)
    #: training crop (height, width)
    crop_size: tuple[int, int] | None = None
    #: long side at random scale 1 (``BASE_SIZE``); PASCAL-Context/ADE20K first resize the short side to it
    base_size: int | None = Field(None, ge=1)
    multi_scale: bool = True
    #: official random scale ``0.5 + randint(0, scale_factor) / 10``
    scale_factor: int | None = Field(None, ge=0)
    #: uniform random scale range instead (relative to ``base_size`` or, without it, the image)
    scale_range: tuple[float, float] | None = None
    flip: bool = True
    #: random brightness shift (official ``RANDOM_BRIGHTNESS_SHIFT_VALUE``); 0 = off
    brightness_shift: int = Field(0, ge=0, le=255)
    #: extra photometric jitter (brightness, contrast, saturation strengths in [0, 1]); not official
    color_jitter: tuple[float, float, float] | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: evaluation resize of the image (its label keeps its size); see ``EvalResize``
    eval_resize: Literal["none", "fixed", "short_side", "long_side"] | None = None
    eval_size: int | tuple[int, int] | None = None
    eval_fit_stride: int | None = Field(None, ge=1)

    @field_validator("color_jitter")
    @classmethod
    def _jitter_in_unit_range(cls, value: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if value is not None and not all(0 <= v <= 1 for v in value):
            raise ValueError(f"expected three strengths in [0, 1], got {list(value)}")
        return value

    @field_validator("scale_range")
    @classmethod
    def _ordered_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 < value[0] <= value[1]:
            raise ValueError(f"expected (low, high) with 0 < low <= high, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _fill_dataset_defaults(self) -> SegDataConfig:
        defaults = DATASET_DEFAULTS[self.dataset]
        for key in ("train_split", "val_split", "crop_size", "base_size", "scale_factor", "eval_resize"):
            if getattr(self, key) is None:
                setattr(self, key, defaults[key])
        if self.eval_size is None and self.eval_resize == defaults["eval_resize"]:
            self.eval_size, self.eval_fit_stride = defaults["eval_size"], defaults["eval_fit_stride"]
        if self.eval_resize != "none" and self.eval_size is None:
            raise ValueError(f"eval_resize: {self.eval_resize} needs an eval_size")
        if self.eval_resize == "fixed" and not isinstance(self.eval_size, tuple):
            raise ValueError("eval_resize: fixed needs eval_size: [height, width]")
        if self.dataset in ("pascal_context", "ade20k") and self.base_size is None:
            raise ValueError(f"dataset {self.dataset} needs a base_size (its short-side resize)")
        if self.dataset == "pascal_context" and self.num_classes not in (None, 59, 60):
            raise ValueError(f"PASCAL-Context has 59 or 60 classes, got num_classes={self.num_classes}")
        return self

    def train_augment(self, ignore_index: int) -> TrainAugment:
        return TrainAugment(
            crop_size=self.crop_size, base_size=self.base_size, multi_scale=self.multi_scale,
            scale_factor=self.scale_factor, scale_range=self.scale_range, flip=self.flip,
            brightness_shift=self.brightness_shift, color_jitter=self.color_jitter, ignore_index=ignore_index,
        )  # fmt: skip

    def evaluation_resize(self) -> EvalResize:
        return EvalResize(self.eval_resize, self.eval_size, self.eval_fit_stride)


class SegLossConfig(StrictModel):
    """``loss:`` — official ``LOSS.USE_OHEM``, ``OHEMTHRES``, ``OHEMKEEP``, ``BALANCE_WEIGHTS``."""

    name: Literal["ce", "ohem"] = "ce"
    #: ``cityscapes`` (the official weights), a list with one weight per class, or none
    class_weights: Literal["cityscapes"] | list[float] | None = None
    ohem_thresh: float = Field(0.9, gt=0, le=1)
    ohem_min_kept: int = Field(131072, ge=1)
    #: weight of each model output; default [1] for HRNetV2 and [0.4, 1] for OCR's [aux, out]
    balance_weights: list[float] | None = None


class SegEvalConfig(EvalConfig):
    """``eval:`` — test-time inference. Unset keys take the dataset's official value."""

    #: the official segmentation YAMLs test without flip (paper's Cityscapes val 81.1: single scale, no flip)
    flip_test: bool = False
    scales: list[float] = Field(default_factory=lambda: [1.0])
    mode: InferenceMode | None = None
    #: sliding-window crop (height, width) and stride; None = dataset default / official stride
    crop_size: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    #: long side at scale 1; None = dataset default (the image's own size for folder datasets)
    base_size: int | None = Field(None, ge=1)
    #: score every image at its own size: no evaluation resize, scale 1 = the image's long side
    native_resolution: bool = False
    fusion: Literal["exp", "softmax"] = "exp"
    #: which output of a multi-output model to score (OCR: -1, the refined logits)
    output_index: int = -1
    #: None = the model's own setting (HRNetV2 False, OCR True)
    align_corners: bool | None = None
    #: how classes absent from both labels and predictions count in mIoU: ``ignore`` them or the official
    #: ``zero`` (identical on full benchmarks; ``mIoU_all_classes`` always reports the official value)
    absent_classes: Literal["ignore", "zero"] = "ignore"
    #: write each prediction as a label PNG (Cityscapes: labelIds, ready for the benchmark server)
    save_predictions: bool = False

    @field_validator("scales")
    @classmethod
    def _positive_scales(cls, scales: list[float]) -> list[float]:
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"expected a non-empty list of positive numbers, got {scales}")
        return scales


def class_meta(data: SegDataConfig) -> tuple[list[str], np.ndarray, int]:
    """Class names, ``(K, 3)`` RGB palette and ignore index of a data config (no dataset scan needed)."""
    if data.dataset == "folder":
        return load_class_list(Path(data.root) / "classes.json")
    if data.dataset == "cityscapes":
        return list(CITYSCAPES_CLASSES), CITYSCAPES_PALETTE, IGNORE_INDEX
    if data.dataset == "lip":
        names = LIP_CLASSES
    elif data.dataset == "ade20k":
        names = ADE20K_CLASSES
    else:
        names = PASCAL_CONTEXT_60_CLASSES if data.num_classes == 60 else PASCAL_CONTEXT_59_CLASSES
    return list(names), official_palette(len(names)), IGNORE_INDEX


def to_cityscapes_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Predicted trainIds -> Cityscapes labelIds (``uint8``), the format of the benchmark server."""
    lut = np.zeros(256, dtype=np.uint8)
    lut[: len(CITYSCAPES_TRAIN_TO_LABEL_ID)] = CITYSCAPES_TRAIN_TO_LABEL_ID
    return lut[train_ids.astype(np.uint8)]


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@register_task
class SegmentationTask(Task):
    """Semantic segmentation with HRNetV2 (``seg_hrnetv2_*``) and HRNetV2+OCR (``seg_hrnetv2_*_ocr``)."""

    name = "segmentation"
    main_metric = "mIoU"
    DataConfig: ClassVar[type[BaseModel]] = SegDataConfig
    LossConfig: ClassVar[type[BaseModel] | None] = SegLossConfig
    EvalConfig: ClassVar[type[BaseModel] | None] = SegEvalConfig

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.classes, self.palette, self.ignore_index = class_meta(self.data)
        if self.data.num_classes not in (None, len(self.classes)):
            raise ConfigError(
                f"data.num_classes={self.data.num_classes}, but dataset {self.data.dataset} "
                f"has {len(self.classes)} classes"
            )
        weights = self.loss_cfg.class_weights
        count = len(CITYSCAPES_CLASS_WEIGHTS) if weights == "cityscapes" else len(weights or self.classes)
        if count != self.num_classes:
            raise ConfigError(f"loss.class_weights has {count} values for the {self.num_classes} classes")
        self._loss: SegmentationLoss | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # ------------------------------------------------------------------------------------ model and data

    def build_model(self) -> nn.Module:
        from ...models import build_model, get_preset

        family = get_preset(self.cfg.model.name).family
        if family not in ("seg", "seg_ocr"):
            raise ConfigError(
                f"model.name={self.cfg.model.name!r} is a {family} model; segmentation needs a seg_hrnetv2_* preset"
            )
        overrides = dict(self.cfg.model.overrides)
        if overrides.setdefault("num_classes", self.num_classes) != self.num_classes:
            raise ConfigError(
                f"model.overrides.num_classes={overrides['num_classes']} but dataset "
                f"{self.data.dataset} has {self.num_classes} classes"
            )
        return build_model(self.cfg.model.name, **overrides)

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        kwargs: dict[str, Any] = dict(
            train=split == "train", ignore_index=self.ignore_index, mean=self.data.mean, std=self.data.std
        )
        if split == "train":
            kwargs["augment"] = self.data.train_augment(self.ignore_index)
        else:
            kwargs["eval_resize"] = self.evaluation_resize()
        if self.data.dataset == "pascal_context":
            kwargs["num_classes"] = self.num_classes
        dataset_split = self.data.train_split if split == "train" else self.data.val_split
        return DATASETS[self.data.dataset](self.data.root, dataset_split, **kwargs)

    def collate_fn(self):
        return collate_segmentation

    # ------------------------------------------------------------------------------------------ training

    def align_corners(self, model: nn.Module) -> bool:
        """The configured value, else the model's own (``model.cfg.align_corners``), else False."""
        if self.eval_cfg.align_corners is not None:
            return self.eval_cfg.align_corners
        return bool(getattr(getattr(_unwrap(model), "cfg", None), "align_corners", False))

    def loss_fn(self, model: nn.Module, outputs: Tensor | Sequence[Tensor]) -> SegmentationLoss:
        """The loss, built on first use: OCR's two outputs default to balance weights [0.4, 1]."""
        if self._loss is None:
            balance = self.loss_cfg.balance_weights
            if balance is None:
                balance = [1.0] if isinstance(outputs, Tensor) else [0.4] * (len(outputs) - 1) + [1.0]
            self._loss = build_loss(
                self.loss_cfg.name,
                ignore_index=self.ignore_index,
                class_weights=self.loss_cfg.class_weights,
                balance_weights=balance,
                ohem_thresh=self.loss_cfg.ohem_thresh,
                ohem_min_kept=self.loss_cfg.ohem_min_kept,
                align_corners=self.align_corners(model),
            )
        return self._loss.to(_device(model))

    def compute_loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, float]]:
        """The configured loss of ``model(batch["image"])`` against ``batch["label"]`` (no extra numbers)."""
        device = _device(model)
        images = batch["image"].to(device, non_blocking=True)
        labels = batch["label"].to(device, non_blocking=True)
        outputs = model(images)
        return self.loss_fn(model, outputs)(outputs, labels), {}

    # ---------------------------------------------------------------------------------------- evaluation

    def evaluation_resize(self) -> EvalResize:
        return EvalResize() if self.eval_cfg.native_resolution else self.data.evaluation_resize()

    def inference_options(self, model: nn.Module) -> dict[str, Any]:
        """Keyword arguments of :func:`predict_scores` from ``eval:`` and the dataset defaults."""
        defaults = DATASET_DEFAULTS[self.data.dataset]
        ev = self.eval_cfg
        mode = ev.mode or defaults["mode"]
        crop = ev.crop_size or defaults["test_crop_size"]
        if mode != "whole" and crop is None:
            raise ConfigError(f"eval.mode={mode} needs eval.crop_size for dataset {self.data.dataset}")
        return dict(
            scales=tuple(ev.scales),
            flip=ev.flip_test,
            mode=mode,
            crop_size=crop,
            stride=ev.stride,
            base_size=None if ev.native_resolution else ev.base_size or defaults["test_base_size"],
            fusion=ev.fusion,
            align_corners=self.align_corners(model),
            output_index=ev.output_index,
            flip_pairs=LIP_FLIP_PAIRS if self.data.dataset == "lip" else (),
            mean=self.data.mean,
            std=self.data.std,
        )

    def predict_labels(
        self,
        model: nn.Module,
        image: Tensor,
        out_size: Sequence[int] | None = None,
        pad: Sequence[int] = (0, 0),
    ) -> Tensor:
        """Class ids ``(H, W)`` of one normalised ``(3, h, w)`` image, at ``out_size`` (default: its size)."""
        device = _device(model)
        scores = predict_scores(model, image[None].to(device), out_size, pad, **self.inference_options(model))
        return scores[0].argmax(dim=0).cpu()

    def evaluate(self, model: nn.Module, loader: torch.utils.data.DataLoader, out_dir: Path) -> dict[str, float]:
        """Confusion matrix over this rank's images, summed over ranks; metrics and the per-class IoU
        report (``per_class_iou.{md,json,png}``) written under ``out_dir`` by rank 0."""
        out_dir = Path(out_dir)
        conf = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        for batch in loader:
            if "label" not in batch:
                raise DataError(
                    f"split {self.data.val_split!r} of {self.data.root} has no labels to evaluate "
                    "against; use `hrnet predict` on its images"
                )
            for i in range(len(batch["name"])):
                label = batch["label"][i].cpu()
                pred = self.predict_labels(model, batch["image"][i], label.shape[-2:], batch["pad"][i].tolist())
                conf += confusion_matrix(label, pred, self.num_classes, self.ignore_index)
                if self.eval_cfg.save_predictions:
                    self._save_prediction(out_dir / "predictions", batch["name"][i], pred)
        conf = reduce_confusion_matrix(conf)
        metrics = segmentation_metrics(conf, self.eval_cfg.absent_classes)
        official = segmentation_metrics(conf, "zero")
        if is_main_process():
            write_iou_report(out_dir, self.classes, metrics)
            write_json(out_dir / "confusion_matrix.json", {"classes": self.classes, "matrix": conf.tolist()})
        return {
            "mIoU": metrics["mIoU"],
            "pixel_acc": metrics["pixel_acc"],
            "mean_acc": metrics["mean_acc"],
            "mIoU_all_classes": official["mIoU"],
        }

    def _save_prediction(self, folder: Path, name: str, pred: Tensor) -> Path:
        labels = pred.numpy().astype(np.uint8)
        if self.data.dataset == "cityscapes":
            labels = to_cityscapes_label_ids(labels)
        return write_image(folder / f"{name}.png", labels)

    # ---------------------------------------------------------------------------------------- prediction

    def segment(self, model: nn.Module, image_rgb: np.ndarray) -> np.ndarray:
        """Class ids ``(H, W)`` ``uint8`` of an RGB ``uint8`` image, with the evaluation recipe (resize,
        padding, scales, flip, windows of ``eval:``)."""
        image = np.ascontiguousarray(image_rgb[:, :, ::-1])  # the official transforms take BGR
        resized, pad = self.evaluation_resize()(image, self.data.mean)
        tensor = torch.from_numpy(normalize_image(resized, self.data.mean, self.data.std).transpose(2, 0, 1).copy())
        with inference_context(model):
            return self.predict_labels(model, tensor, image.shape[:2], pad).numpy().astype(np.uint8)

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list[Path]:
        """For each image (files or folders of images): ``<stem>_label.png`` (class ids; Cityscapes also
        ``<stem>_labelIds.png``) and ``<stem>_overlay.png`` (colours blended over the image, ``alpha``, with a
        legend of the classes present)."""
        unknown = sorted(set(options) - {"alpha"})
        if unknown:
            raise ConfigError(f"unknown segmentation predict option(s) {unknown}; the only option is alpha=<0..1>")
        alpha = float(options.get("alpha", 0.5))
        out_dir = Path(out_dir)
        written: list[Path] = []
        for path in expand_inputs(inputs)[0]:
            image = read_image(path, "bgr")
            labels = self.segment(model, image[:, :, ::-1])
            written.append(write_image(out_dir / f"{path.stem}_label.png", labels))
            if self.data.dataset == "cityscapes":
                written.append(write_image(out_dir / f"{path.stem}_labelIds.png", to_cityscapes_label_ids(labels)))
            blended = overlay(image, labels, self.palette, alpha, self.ignore_index, self.classes)
            written.append(write_image(out_dir / f"{path.stem}_overlay.png", blended, color="bgr"))
        return written
