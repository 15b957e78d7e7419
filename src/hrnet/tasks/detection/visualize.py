"""Drawing detections: masks blended in, boxes with a contrasting edge, captions that do not overlap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..drawing import LabelPlacer, draw_box, label_color

__all__ = ["draw_boxes", "draw_detections"]


def draw_boxes(image_rgb: np.ndarray, boxes_xyxy: np.ndarray | Sequence[Sequence[float]],
               captions: Sequence[str] | None = None, colors: Sequence[Sequence[int]] | None = None,
               masks: np.ndarray | None = None, mask_alpha: float = 0.45) -> np.ndarray:
    """A copy of the RGB ``uint8`` ``(H, W, 3)`` image with ``boxes_xyxy`` (N, 4) drawn: each ``masks``
    ``(N, H, W)`` (bool) blended in its colour, each box outlined bright over dark, each caption on a
    filled label above its box (moved off the labels placed before it, inside the image). ``colors``
    default to one per box index."""
    canvas = np.ascontiguousarray(image_rgb, dtype=np.uint8).copy()
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    colors = [tuple(int(c) for c in color) for color in colors] if colors is not None else \
        [label_color(i + 1) for i in range(len(boxes))]
    if masks is not None:
        for mask, color in zip(np.asarray(masks, dtype=bool), colors, strict=True):
            canvas[mask] = (canvas[mask] * (1 - mask_alpha) + np.array(color) * mask_alpha).astype(np.uint8)
    for box, color in zip(boxes, colors, strict=True):
        draw_box(canvas, box, color)
    if captions:
        placer = LabelPlacer(canvas)
        for box, caption, color in zip(boxes, captions, colors, strict=True):
            placer.place(caption, (box[0], box[1]), color)
    return canvas


def draw_detections(image: Tensor | np.ndarray, detection: dict[str, Tensor], names: Sequence[str] | None = None,
                    score_threshold: float = 0.5, mask_threshold: float = 0.5) -> Tensor | np.ndarray:
    """The image with the detections scoring >= ``score_threshold`` drawn: masks filled, boxes outlined and
    captioned ``<name> <score>`` (``names[label - 1]``, or the label number), one colour per label.

    ``image`` is a ``(3, H, W)`` tensor (uint8, or float in [0, 1]) — a uint8 ``(3, H, W)`` tensor comes
    back — or an RGB ``uint8`` ``(H, W, 3)`` array, and then an array comes back. ``detection`` holds a
    detector's ``boxes`` (XYXY), ``labels``, ``scores`` and, optionally, ``masks`` (N, 1, H, W)."""
    as_tensor = isinstance(image, Tensor)
    if as_tensor:
        tensor = image if image.dtype == torch.uint8 else (image.clamp(0, 1) * 255).round().to(torch.uint8)
        array = tensor.permute(1, 2, 0).numpy()
    else:
        array = image
    keep = (detection["scores"] >= score_threshold).cpu()
    labels = detection["labels"].cpu()[keep].tolist()
    scores = detection["scores"].cpu()[keep].tolist()
    masks = None
    if "masks" in detection:
        masks = (detection["masks"].cpu()[keep][:, 0] > mask_threshold).numpy()
    captions = [f"{names[label - 1] if names and 0 < label <= len(names) else label} {score:.2f}"
                for label, score in zip(labels, scores, strict=True)]
    drawn = draw_boxes(array, detection["boxes"].cpu()[keep].numpy(), captions,
                       [label_color(label) for label in labels], masks)
    return torch.from_numpy(drawn).permute(2, 0, 1).contiguous() if as_tensor else drawn
