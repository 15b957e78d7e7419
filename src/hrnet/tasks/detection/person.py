"""A trained detector as the person detector of top-down pose estimation (``hrnet predict --detector``).

The pose pipeline takes any callable ``image (H, W, 3) RGB -> (boxes (N, 4) xywh, scores (N,))``
(:data:`hrnet.tasks.pose.inference.Detector`); :class:`PersonDetector` makes one of a detection model
by keeping its person detections. The person is COCO's category id 1, found among the model's labels
through the category map of its config's annotation file. torchvision's COCO detectors serve too, named
``torchvision:NAME`` (e.g. ``torchvision:fasterrcnn_resnet50_fpn_v2``), with a state dict file or one of
torchvision's own weights (``DEFAULT``, ``COCO_V1``): the person is label 1 of their 91-index labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models import detection, get_model, get_model_weights, list_models
from torchvision.ops import box_convert

from ...engine.build import build_model, build_task
from ...engine.checkpoint import load_model_weights, load_state_dict_checked
from ...engine.config import load_config
from ...errors import CheckpointError, ConfigError, did_you_mean
from ...models.safe_load import torch_load_safely
from .data import CategoryMap
from .inference import as_float_image, detect_people, person_boxes
from .models import build_detector, split_detector_name

__all__ = [
    "COCO_PERSON_ID",
    "TORCHVISION_PREFIX",
    "PersonDetector",
    "person_label",
    "load_person_detector",
    "list_torchvision_detectors",
    "torchvision_weights",
    "build_torchvision_detector",
]

#: the person's category id in COCO (and in any COCO-style detection results file for pose)
COCO_PERSON_ID = 1
#: COCO detection's category count: a model with this many labels and no annotation file is read as COCO's
COCO_NUM_CATEGORIES = 80
#: how a detector name asks for one of torchvision's detection models: ``torchvision:NAME``
TORCHVISION_PREFIX = "torchvision:"


class PersonDetector:
    """``detector(image) -> (boxes, scores)``: the persons a detection model finds in an RGB uint8
    (H, W, 3) image scoring at least ``score_threshold`` (the best ``max_persons`` when given), best first,
    as float64 arrays with boxes in xywh image pixels (the top-down pose pipeline's box convention).

    ``model`` is a detection model, or a runtime with torchvision's detector interface (a list of float
    CPU images in, one ``{boxes, labels, scores}`` per image out), e.g. the ONNX Runtime runner of an
    exported detector."""

    def __init__(self, model: nn.Module | Callable[[list[torch.Tensor]], list[dict[str, torch.Tensor]]],
                 person_label: int = 1, score_threshold: float = 0.5, max_persons: int | None = None) -> None:
        if max_persons is not None and max_persons < 1:
            raise ConfigError(f"the person detector's max_persons must be at least 1, got {max_persons}")
        self.model = model.eval() if isinstance(model, nn.Module) else model
        self.person_label = person_label
        self.score_threshold = score_threshold
        self.max_persons = max_persons

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(self.model, nn.Module):
            boxes, scores = detect_people(self.model, image, self.score_threshold, self.person_label,
                                          self.max_persons)
        else:
            output = self.model([as_float_image(image)])[0]
            boxes, scores = person_boxes(output, self.score_threshold, self.person_label, self.max_persons)
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


def list_torchvision_detectors() -> list[str]:
    """torchvision's detection models as ``--detector`` names: ``torchvision:fasterrcnn_resnet50_fpn_v2``..."""
    return [TORCHVISION_PREFIX + name for name in list_models(module=detection)]


def _torchvision_model_name(name: str) -> str:
    """``name`` without its ``torchvision:`` prefix, checked against torchvision's list (close names suggested)."""
    known = list_torchvision_detectors()
    if name not in known:
        raise ConfigError(f"unknown torchvision detector {name!r}.{did_you_mean(name, known)} "
                          f"torchvision's detectors: {', '.join(known)}.")
    return name.removeprefix(TORCHVISION_PREFIX)


def torchvision_weights(name: str, weights: str | Path) -> Any:
    """The torchvision weights enum member ``weights`` names for detector ``name`` (``torchvision:NAME``):
    ``DEFAULT``, a member such as ``COCO_V1``, or its full name (``FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1``);
    None when ``weights`` is none of these (then it is a file). Resolving downloads nothing."""
    enum = get_model_weights(_torchvision_model_name(name))
    return enum.__members__.get(str(weights).removeprefix(f"{enum.__name__}."))  # DEFAULT is an alias member


def build_torchvision_detector(name: str, weights: str | Path) -> nn.Module:
    """torchvision's detector ``name`` (``torchvision:NAME``) with ``weights``: one of its weights enum's
    members (see :func:`torchvision_weights`; torchvision downloads them into its cache) or a state dict
    file, loaded without running code (``weights_only``) and checked key by key."""
    model_name = _torchvision_model_name(name)
    path = Path(weights)
    if not path.is_file():
        member = torchvision_weights(name, weights)
        if member is None:
            choices = dict.fromkeys(["DEFAULT", *get_model_weights(model_name).__members__])
            raise CheckpointError(f"detector {name}: weights {str(weights)!r} are no such file, nor one of "
                                  f"torchvision's weights for it ({', '.join(choices)})")
        try:
            return get_model(model_name, weights=member)
        except OSError as e:  # urllib's errors are OSErrors: no network, a proxy, a full disk
            raise CheckpointError(f"cannot fetch torchvision's {member} weights of {model_name} from {member.url}: "
                                  f"{e}. Fetch them where the network allows and give the file instead.") from None
    model = get_model(model_name, weights=None, weights_backbone=None)
    state = torch_load_safely(path)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a training checkpoint: its model's weights
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict of {model_name}")
    load_state_dict_checked(model, state, str(path))
    return model


def load_person_detector(source: str | Path, weights: str | Path, score_threshold: float = 0.5,
                         device: str | torch.device = "cpu", overrides: Iterable[str] = (),
                         max_persons: int | None = None) -> PersonDetector:
    """The person detector of ``source`` with ``weights`` loaded, on ``device``, keeping persons scoring at
    least ``score_threshold``, the best ``max_persons`` of them when given.

    ``source`` is a detection experiment config (YAML; ``overrides`` as ``KEY=VALUE`` apply to it, and
    its annotation file, when present, maps category id 1 to the model's label), a detector preset
    name such as ``faster_rcnn_hrnetv2p_w32`` (a COCO model: 80 categories, person = label 1), or one of
    torchvision's COCO detectors, ``torchvision:NAME`` (:func:`list_torchvision_detectors`), whose
    ``weights`` are a state dict file or one of torchvision's weights (``DEFAULT``, ``COCO_V1``).
    """
    if str(source).startswith(TORCHVISION_PREFIX):
        model, label = build_torchvision_detector(str(source), weights), 1
    elif str(source).endswith((".yaml", ".yml")):
        cfg = load_config(source, overrides)
        if cfg.task != "detection":
            raise ConfigError(f"detector config {str(source)!r} is a {cfg.task!r} config, not a detection one")
        task = build_task(cfg)
        label = person_label(task.category_map(), task.num_classes, f"detector config {str(source)!r}")
        model = build_model(task, cfg, weights)
    else:
        if TORCHVISION_PREFIX + str(source) in list_torchvision_detectors():
            raise ConfigError(f"{str(source)!r} is one of torchvision's detectors: name it "
                              f"'{TORCHVISION_PREFIX}{source}'")
        arch, backbone = split_detector_name(str(source))
        model = build_detector(arch, backbone, num_classes=COCO_NUM_CATEGORIES)
        load_model_weights(model, weights)
        label = 1
    return PersonDetector(model.to(device), label, score_threshold, max_persons)
