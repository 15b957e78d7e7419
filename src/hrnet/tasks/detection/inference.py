"""Running a detector on user images: batched detection and person boxes for top-down pose (drawing:
:mod:`.visualize`, whose ``draw_detections`` is importable from here too)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ...models.context import inference_context
from .visualize import draw_detections  # its home before visualize.py: kept importable from here

__all__ = ["as_float_image", "detect", "detect_people", "person_boxes", "draw_detections"]


def as_float_image(image: Tensor | np.ndarray) -> Tensor:
    """An RGB image as the float (3, H, W) tensor in [0, 1] detectors take: from a uint8 or float
    (3, H, W) tensor, or a uint8 (H, W, 3) NumPy array (RGB, e.g. ``cv2.cvtColor(bgr, COLOR_BGR2RGB)``)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB array, got shape {image.shape}")
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) RGB tensor, got shape {tuple(image.shape)}")
    return image.float() / 255 if image.dtype == torch.uint8 else image.float()


def detect(model: nn.Module, images: Sequence[Tensor | np.ndarray]) -> list[dict[str, Tensor]]:
    """The detector's outputs (``boxes`` XYXY in each image's pixels, ``labels``, ``scores``, and
    ``masks`` for Mask R-CNN) for a batch of images of any sizes, on the model's device, in eval mode."""
    device = next(model.parameters()).device
    with inference_context(model):
        outputs = model([as_float_image(image).to(device) for image in images])
    return [{key: value.cpu() for key, value in output.items()} for output in outputs]


def detect_people(model: nn.Module, image: Tensor | np.ndarray, score_threshold: float = 0.5,
                  person_label: int = 1, max_persons: int | None = None) -> tuple[Tensor, Tensor]:
    """Person boxes for top-down pose estimation: ``(boxes, scores)``, boxes (N, 4) XYXY in the image's
    pixels and their scores, best first, keeping scores >= ``score_threshold`` (the best ``max_persons``
    when given). ``person_label`` is the detector's label of the person class (1 for a COCO-trained
    detector: category id 1, in torchvision's 91-index scheme as in the project's 80-category one)."""
    return person_boxes(detect(model, [image])[0], score_threshold, person_label, max_persons)


def person_boxes(output: dict[str, Tensor], score_threshold: float = 0.5, person_label: int = 1,
                 max_persons: int | None = None) -> tuple[Tensor, Tensor]:
    """The person detections of one detector ``output`` (``boxes``, ``labels``, ``scores``): those of label
    ``person_label`` scoring >= ``score_threshold``, best first, at most ``max_persons`` of them."""
    keep = (output["labels"] == person_label) & (output["scores"] >= score_threshold)
    boxes, scores = output["boxes"][keep], output["scores"][keep]
    order = torch.argsort(scores, descending=True, stable=True)[:max_persons]
    return boxes[order], scores[order]
