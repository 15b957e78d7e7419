"""The detection task for the engine: COCO-format data, torchvision detectors on HRNetV2p and CenterNet
on HRNetV2, COCO AP.

A config names a detector preset (``model.name: faster_rcnn_hrnetv2p_w18``, see
:func:`~hrnet.tasks.detection.models.list_detectors`); ``model.overrides`` may hold ``num_classes``
(default 80), ``frozen_bn`` (default true, CenterNet false), ``backbone`` (options for ``hrnet.build_model``, e.g.
``{width: 8}``) and options of the torchvision detector (e.g. ``box_score_thresh``).
HTC's semantic branch (``model.overrides.semantic``, on by default) trains from COCO-Stuff label maps
under ``data.root / data.stuff_maps / data.train_images``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ...engine.config import StrictModel
from ...engine.distributed import all_gather_object, broadcast_object, is_main_process
from ...engine.task import Task, register_task
from ...errors import ConfigError, DataError
from ...io import write_json
from ...media import expand_inputs, read_image, write_image
from .centernet import CenterNetTrainTransform
from .data import (
    CategoryMap,
    CocoDetection,
    collate_detection,
    eval_transforms,
    image_tensor,
    load_coco,
    train_transforms,
)
from .evaluation import detections_to_coco, evaluate_coco, write_results
from .inference import detect
from .models import ARCHITECTURES, build_detector, split_detector_name
from .visualize import draw_detections

__all__ = ["DetectionDataConfig", "DetectionTask"]


class DetectionDataConfig(StrictModel):
    """``data:`` of a detection config: a COCO-format dataset under ``root`` and the input sizes."""

    root: Path
    train_ann: str = "annotations/instances_train2017.json"
    train_images: str = "train2017"
    val_ann: str = "annotations/instances_val2017.json"
    val_images: str = "val2017"
    #: shorter / longer image side after resizing (mmdetection's ``img_scale=(1333, 800)``); CenterNet
    #: trains on square crops of ``min_size`` (a multiple of 32) and ignores ``max_size``
    min_size: int = Field(800, ge=32)
    max_size: int = Field(1333, ge=32)
    #: multi-scale training (``mstrain``): each training image's shorter side is drawn uniformly from
    #: [low, high], its longer side kept at most ``train_max_size`` (default ``max_size``); evaluation
    #: stays at ``min_size`` / ``max_size``
    train_min_size: tuple[int, int] | None = None
    train_max_size: int | None = Field(None, ge=32)
    #: COCO-Stuff label maps (``<stuff_maps>/<train_images>/<image stem>.png``) for HTC's semantic branch
    stuff_maps: str = "stuffthingmaps"
    flip_prob: float = Field(0.5, ge=0, le=1)
    #: CenterNet's crops: the crop side as multiples of the image's longer side (its 0.6, 0.7, ..., 1.3)
    #: and its colour jitter + PCA lighting; the other detectors ignore both
    crop_scales: tuple[float, ...] = CenterNetTrainTransform.SCALES
    color_jitter: bool = True
    #: annotations whose box is narrower or lower than this (pixels) are skipped and counted
    min_box_size: float = Field(1.0, ge=0)
    #: drop training images without any usable object (as mmdetection does)
    skip_empty_train: bool = True

    @model_validator(mode="after")
    def _sizes_ordered(self) -> DetectionDataConfig:
        if self.max_size < self.min_size:
            raise ValueError(f"max_size ({self.max_size}) must be at least min_size ({self.min_size})")
        if self.train_min_size is not None:
            low, high = self.train_min_size
            if not 32 <= low <= high:
                raise ValueError(f"train_min_size must be [low, high] with 32 <= low <= high, got {[low, high]}")
        return self


@register_task
class DetectionTask(Task):
    """Object detection and instance segmentation (Faster/Mask R-CNN, FCOS, RetinaNet, Cascade (Mask) R-CNN,
    HTC on HRNetV2p)."""

    name = "detection"
    DataConfig = DetectionDataConfig
    main_metric = "bbox_AP"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.arch, self.backbone = split_detector_name(cfg.model.name)
        self.num_classes = cfg.model.overrides.get("num_classes", 80)
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ConfigError(f"model.overrides.num_classes must be a positive integer, got {self.num_classes!r}")

    # ------------------------------------------------------------------------------------ model / data

    def build_model(self) -> nn.Module:
        options = dict(self.cfg.model.overrides)
        options.pop("num_classes", None)
        backbone_overrides = options.pop("backbone", {})
        if not isinstance(backbone_overrides, dict):
            raise ConfigError("model.overrides.backbone must be a mapping of options, "
                              f"got {backbone_overrides!r}")
        data = self.data
        try:
            model = build_detector(self.arch, self.backbone, self.num_classes, min_size=data.min_size,
                                   max_size=data.max_size, backbone_overrides=backbone_overrides, **options)
        except (TypeError, ConfigError) as e:
            raise ConfigError(f"model.overrides of {self.cfg.model.name!r}: {e}") from None
        if data.train_min_size is not None:
            # the data pipeline draws each training image's scale; torchvision's transform would resize it
            # back to min_size (its own option for this, used by torchvision's reference scripts)
            model.transform._skip_resize = True
        return model

    def uses_stuff_maps(self) -> bool:
        """Whether the model trains a semantic branch (HTC's, unless ``model.overrides.semantic`` is false)."""
        options = ARCHITECTURES[self.arch].option_names()
        return "semantic" in options and bool(self.cfg.model.overrides.get("semantic", True))

    def _stuff_dir(self) -> Path:
        data = self.cfg.data
        folder = data.root / data.stuff_maps / data.train_images
        if not folder.is_dir():
            raise DataError(f"{self.cfg.model.name} trains its semantic branch from COCO-Stuff label maps, but the "
                            f"stuff-map folder {folder} does not exist (data.root / data.stuff_maps / "
                            "data.train_images); add the maps or set model.overrides.semantic: false")
        return folder

    def build_dataset(self, split: str) -> CocoDetection:
        data = self.data
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        train = split == "train"
        dataset = CocoDetection(
            data.root / (data.train_ann if train else data.val_ann),
            data.root / (data.train_images if train else data.val_images),
            self._train_transforms() if train else eval_transforms(),
            with_masks=ARCHITECTURES[self.arch].predicts_masks,
            skip_empty=train and data.skip_empty_train,
            min_box_size=data.min_box_size,
            stuff_dir=self._stuff_dir() if train and self.uses_stuff_maps() else None,
        )
        found = len(dataset.categories)
        if found != self.num_classes:
            raise DataError(f"{dataset.ann_file} has {found} categories but the model has {self.num_classes} "
                            f"(set model.overrides.num_classes: {found})")
        return dataset

    def _train_transforms(self) -> Callable:
        """CenterNet trains on square random crops of ``data.min_size``; the others on resized images, of a
        shorter side drawn from ``data.train_min_size`` with multi-scale training."""
        data = self.data
        if self.arch == "centernet":
            return CenterNetTrainTransform(data.min_size, data.flip_prob, data.color_jitter, data.crop_scales)
        if data.train_min_size is not None:
            return train_transforms(data.train_min_size, data.train_max_size or data.max_size, data.flip_prob)
        return train_transforms(data.min_size, data.max_size, data.flip_prob)

    def collate_fn(self) -> Callable:
        return collate_detection

    # ----------------------------------------------------------------------------------- train / eval

    def compute_loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        images, targets = batch
        losses = model(images, targets)
        loss = sum(losses.values())
        return loss, {name: float(value.detach()) for name, value in losses.items()}

    def evaluate(self, model: nn.Module, loader: DataLoader, out_dir: Path) -> dict[str, float]:
        """COCO bbox (and segm for Mask R-CNN) AP: each process detects its share of the val split, rank 0
        gathers them, writes ``detections_{bbox,segm}.json`` under ``out_dir`` and evaluates; every rank
        returns the metrics."""
        dataset: CocoDetection = loader.dataset
        results: dict[str, list] = {"bbox": []}
        if ARCHITECTURES[self.arch].predicts_masks:
            results["segm"] = []
        for images, targets in loader:
            outputs = model(list(images))
            batch = detections_to_coco(outputs, [t["image_id"] for t in targets], dataset.categories)
            for iou_type, entries in batch.items():
                results[iou_type].extend(entries)
        gathered = all_gather_object(results)
        metrics: dict[str, float] = {}
        if is_main_process():
            merged = {key: [entry for part in gathered for entry in part[key]] for key in results}
            write_results(out_dir, merged)
            for iou_type, entries in merged.items():
                stats, table = evaluate_coco(dataset.coco, entries, iou_type, dataset.image_ids)
                print(f"COCO {iou_type} on {len(dataset)} images of {dataset.ann_file}:\n{table}")
                metrics.update(stats)
        return broadcast_object(metrics)

    # ---------------------------------------------------------------------------------------- predict

    def annotation_file(self) -> Path | None:
        """The config's val (or else train) annotation file, when one exists."""
        data = self.data
        return next((data.root / ann for ann in (data.val_ann, data.train_ann) if (data.root / ann).is_file()), None)

    def category_map(self) -> CategoryMap | None:
        """Category ids <-> labels 1..K of the model, from :meth:`annotation_file` when one exists."""
        ann_file = self.annotation_file()
        return CategoryMap.from_categories(load_coco(ann_file).dataset["categories"]) if ann_file else None

    def category_names(self) -> list[str] | None:
        """Names of labels 1..K from the config's val (or train) annotation file, when one exists."""
        categories = self.category_map()
        return list(categories.names) if categories else None

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list[Path]:
        """Detect objects in images (files or folders of them): writes ``<stem>.png`` with boxes, labels,
        scores (and masks) drawn, and ``detections.json`` (XYXY boxes, labels, names, scores per image).
        Options: ``score_threshold`` (0.5) for what is drawn and listed, ``batch_size`` (1)."""
        score_threshold = float(options.pop("score_threshold", 0.5))
        batch_size = int(options.pop("batch_size", 1))
        if options:
            raise ConfigError(f"unknown predict option(s) {sorted(options)}; "
                              "known: score_threshold, batch_size")
        paths = expand_inputs(inputs)[0]
        names = self.category_names()
        out_dir = Path(out_dir)
        written, listing = [], []
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            images = [image_tensor(read_image(path)) for path in chunk]
            for path, image, output in zip(chunk, images, detect(model, images), strict=True):
                drawn = draw_detections(image, output, names, score_threshold)
                written.append(write_image(out_dir / f"{path.stem}.png", drawn.permute(1, 2, 0).numpy()))
                listing.append(_detections_record(path, output, names, score_threshold))
        write_json(out_dir / "detections.json", listing, indent=1)
        return [*written, out_dir / "detections.json"]


def _detections_record(path: Path, output: dict[str, Tensor], names: list[str] | None,
                       score_threshold: float) -> dict[str, Any]:
    keep = output["scores"] >= score_threshold
    labels = output["labels"][keep].tolist()
    return {
        "file": str(path),
        "boxes_xyxy": [[round(v, 2) for v in box] for box in output["boxes"][keep].tolist()],
        "labels": labels,
        "names": [names[label - 1] if names and 0 < label <= len(names) else str(label) for label in labels],
        "scores": [round(v, 4) for v in output["scores"][keep].tolist()],
    }
