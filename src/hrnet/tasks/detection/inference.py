"""Running a detector on user images: batched detection, drawing, and person boxes for top-down pose."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from ...models.context import inference_context

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


def draw_detections(image: Tensor, detection: dict[str, Tensor], names: Sequence[str] | None = None,
                    score_threshold: float = 0.5, mask_threshold: float = 0.5) -> Tensor:
    """The uint8 (3, H, W) image with the detections scoring >= ``score_threshold`` drawn: masks filled,
    boxes outlined and captioned ``<name> <score>`` (``names[label - 1]``, or the label number)."""
    keep = detection["scores"] >= score_threshold
    boxes, labels, scores = detection["boxes"][keep], detection["labels"][keep], detection["scores"][keep]
    canvas = image if image.dtype == torch.uint8 else (image.clamp(0, 1) * 255).to(torch.uint8)
    colors = [_label_color(int(label)) for label in labels]
    if "masks" in detection and keep.any():
        masks = detection["masks"][keep][:, 0] > mask_threshold
        canvas = draw_segmentation_masks(canvas, masks, alpha=0.45, colors=colors)
    captions = [f"{names[label - 1] if names and 0 < label <= len(names) else label} {score:.2f}"
                for label, score in zip(labels.tolist(), scores.tolist(), strict=True)]
    return draw_bounding_boxes(canvas, boxes, captions, colors=colors, width=2)


def _label_color(label: int) -> tuple[int, int, int]:
    """A fixed, well-spread colour per label (golden-ratio hue steps)."""
    hue = (label * 0.618033988749895) % 1.0
    rgb = np.clip(np.abs((hue * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
    return tuple(int(60 + 195 * c) for c in rgb)
