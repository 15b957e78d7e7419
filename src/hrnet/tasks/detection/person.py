"""A trained detector as the person detector of top-down pose estimation (``hrnet predict --detector``).

The pose pipeline takes any callable ``image (H, W, 3) RGB -> (boxes (N, 4) xywh, scores (N,))``
(:data:`hrnet.tasks.pose.inference.Detector`); :class:`PersonDetector` makes one of a detection model
by keeping its person detections. The person is COCO's category id 1, found among the model's labels
through the category map of its config's annotation file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.ops import box_convert

from ...engine.build import build_model, build_task
from ...engine.checkpoint import load_model_weights
from ...engine.config import load_config
from ...errors import ConfigError
from .data import CategoryMap
from .inference import detect_people
from .models import build_detector, split_detector_name

__all__ = ["COCO_PERSON_ID", "PersonDetector", "person_label", "load_person_detector"]

#: the person's category id in COCO (and in any COCO-style detection results file for pose)
COCO_PERSON_ID = 1
#: COCO detection's category count: a model with this many labels and no annotation file is read as COCO's
COCO_NUM_CATEGORIES = 80


class PersonDetector:
    """``detector(image) -> (boxes, scores)``: the persons a detection model finds in an RGB uint8
    (H, W, 3) image scoring at least ``score_threshold``, best first, as float64 arrays with boxes in
    xywh image pixels (the top-down pose pipeline's box convention)."""

    def __init__(self, model: nn.Module, person_label: int = 1, score_threshold: float = 0.5) -> None:
        self.model = model.eval()
        self.person_label = person_label
        self.score_threshold = score_threshold

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = detect_people(self.model, image, self.score_threshold, self.person_label)
        xywh = box_convert(boxes, "xyxy", "xywh")
        return xywh.double().numpy(), scores.double().numpy()


def person_label(categories: CategoryMap | None, num_categories: int, source: str) -> int:
    """The model label of COCO category id 1 (person) through ``categories``; without a category map, a
    model of COCO's 80 categories has it as label 1. ``ConfigError`` naming ``source`` otherwise."""
    if categories is None:
        if num_categories == COCO_NUM_CATEGORIES:
            return 1
        raise ConfigError(
            f"{source}: cannot tell which of its {num_categories} labels is the person: its annotation file "
            f"(data.root / data.val_ann or data.train_ann), whose categories name the labels, does not exist"
        )
    if COCO_PERSON_ID not in categories:
        known = ", ".join(f"{cat_id} ({name})" for cat_id, name in zip(categories.cat_ids, categories.names,
                                                                       strict=True))
        raise ConfigError(f"{source}: the detector has no person class (COCO category id {COCO_PERSON_ID}); "
                          f"its categories are {known}")
    return categories.label(COCO_PERSON_ID)


def load_person_detector(source: str | Path, weights: str | Path, score_threshold: float = 0.5,
                         device: str | torch.device = "cpu", overrides: Iterable[str] = ()) -> PersonDetector:
    """The person detector of ``source`` with ``weights`` loaded, on ``device``.

    ``source`` is a detection experiment config (YAML; ``overrides`` as ``KEY=VALUE`` apply to it, and
    its annotation file, when present, maps category id 1 to the model's label) or a detector preset
    name such as ``faster_rcnn_hrnetv2p_w32`` (a COCO model: 80 categories, person = label 1).
    """
    if str(source).endswith((".yaml", ".yml")):
        cfg = load_config(source, overrides)
        if cfg.task != "detection":
            raise ConfigError(f"detector config {str(source)!r} is a {cfg.task!r} config, not a detection one")
        task = build_task(cfg)
        label = person_label(task.category_map(), task.num_classes, f"detector config {str(source)!r}")
        model = build_model(task, cfg, weights)
    else:
        arch, backbone = split_detector_name(str(source))
        model = build_detector(arch, backbone, num_classes=COCO_NUM_CATEGORIES)
        load_model_weights(model, weights)
        label = 1
    return PersonDetector(model.to(device), label, score_threshold)
