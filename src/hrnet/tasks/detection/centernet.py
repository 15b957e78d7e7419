"""CenterNet ("Objects as Points") on HRNetV2's stride-4 representation.

Each object is its box centre on a stride-4 heatmap per category, with the box size and the centre's
sub-cell offset regressed at that cell. The definitions follow the CenterNet code (xingyizhou/CenterNet):

* heads: 3x3 conv (256) - ReLU - 1x1 conv for the heatmap (K channels, final bias -2.19, i.e. a prior
  of 0.1), the width/height (2, in output cells) and the offset (2);
* targets: a Gaussian per object at its integer centre cell, radius :func:`gaussian_radius` (CenterNet's
  formula for corners that may move while the box keeps IoU >= 0.7), sigma = diameter / 6, maxima where
  Gaussians overlap;
* losses: the penalty-reduced focal loss (alpha 2, beta 4) normalised by the number of objects, L1 on
  the size (weight 0.1) and on the offset (weight 1) at the object cells;
* decoding: heatmap peaks kept by a 3x3 max-pool, the top 100 over all categories, no NMS.

Training images come as CenterNet's square crops (:class:`CenterNetTrainTransform`: a random scale of
0.6-1.3 of the longer side around a random centre, warped to ``input_size``, padding outside the
image, flip, colour jitter and PCA lighting). Test images keep their size and are padded at the bottom
and right to ``(size | 31) + 1``, CenterNet's ``keep_res`` rule for stride-32 networks, so boxes come
out in the image's pixels. The model follows torchvision's detector contract: ``model(images,
targets)`` returns the weighted losses, ``model(images)`` one ``{boxes, labels, scores}`` per image
with labels ``1..K``.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision import tv_tensors

from ...errors import ConfigError
from ...models.complexity import Complexity, complexity

__all__ = [
    "CenterNet",
    "CenterNetHead",
    "CenterNetTrainTransform",
    "HEATMAP_PRIOR_BIAS",
    "build_centernet",
    "gaussian_radius",
    "draw_gaussian",
    "encode_targets",
    "focal_loss",
    "regression_l1_loss",
    "decode_detections",
]

#: the heatmap's output stride and the stride input sizes must be multiples of (HRNet's lowest branch)
OUTPUT_STRIDE = 4
SIZE_DIVISOR = 32
#: -log((1 - 0.1) / 0.1): every heatmap location starts at probability 0.1
HEATMAP_PRIOR_BIAS = -2.19
#: CenterNet's COCO normalisation and PCA lighting (its BGR values, here in RGB order)
IMAGE_MEAN = (0.47026115, 0.44719302, 0.40789654)
IMAGE_STD = (0.27809835, 0.27408164, 0.28863828)
EIGEN_VALUES = (0.2141788, 0.01817699, 0.00341571)
EIGEN_VECTORS = ((-0.56089297, 0.71832671, 0.41158938),
                 (-0.5832747, 0.00994535, -0.81221408),
                 (-0.58752847, -0.69563484, 0.41340352))


# ------------------------------------------------------------------------------------------- targets


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's heatmap radius for a ``height x width`` box (its ``gaussian_radius``, from CornerNet),
    computed as the CenterNet code does: for each of the three corner displacements (both corners inward,
    both outward, one each) the quadratic ``a r^2 - b r + c = 0`` of the box keeping IoU ``min_overlap``,
    "solved" as ``(b + sqrt(b^2 - 4ac)) / 2``, and the smallest of the three. That is not the quadratic's
    root (the denominator lacks ``a``; mmdetection divides by ``2a``): it gives wider Gaussians than the
    geometry says, and it is what CenterNet's published models were trained with, so it is kept as is."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * c1)) / 2
    a2 = 4
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def _gaussian_disk(radius: int) -> Tensor:
    """A (2r+1)^2 Gaussian of sigma (2r+1)/6 with peak 1; values under float eps x peak are 0."""
    diameter = 2 * radius + 1
    sigma = diameter / 6
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    disk = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
    disk[disk < torch.finfo(torch.float64).eps * disk.max()] = 0
    return disk.float()


def draw_gaussian(heatmap: Tensor, x: int, y: int, radius: int) -> Tensor:
    """Raise ``heatmap`` (H, W) in place to a Gaussian of ``radius`` centred on cell (x, y)."""
    disk = _gaussian_disk(radius)
    height, width = heatmap.shape
    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)
    if left + right > 0 and top + bottom > 0:
        window = heatmap[y - top:y + bottom, x - left:x + right]
        torch.maximum(window, disk[radius - top:radius + bottom, radius - left:radius + right], out=window)
    return heatmap


def encode_targets(boxes: Tensor, labels: Tensor, num_categories: int, output_size: tuple[int, int],
                   stride: int = OUTPUT_STRIDE) -> dict[str, Tensor]:
    """CenterNet's training targets of one image: ``boxes`` (N, 4) XYXY input pixels, ``labels`` 1..K.

    Boxes go to output cells (divided by ``stride``) and are clipped to ``[0, size - 1]``; those left
    without area are skipped. Returns ``heatmap`` (K, h, w), and per kept object its flat cell ``index``,
    ``size`` (w, h in cells) and ``offset`` (centre minus its integer cell).
    """
    height, width = output_size
    if len(labels) and not 1 <= int(labels.min()) <= int(labels.max()) <= num_categories:
        raise ValueError(f"labels must lie in 1..{num_categories}, got {labels.tolist()}")
    heatmap = torch.zeros(num_categories, height, width)
    cells = (boxes.detach().float().cpu() / stride)
    cells[:, 0::2] = cells[:, 0::2].clamp(0, width - 1)
    cells[:, 1::2] = cells[:, 1::2].clamp(0, height - 1)
    sizes = cells[:, 2:] - cells[:, :2]
    keep = (sizes > 0).all(dim=1)
    cells, sizes, labels = cells[keep], sizes[keep], labels.cpu()[keep]
    centres = (cells[:, :2] + cells[:, 2:]) / 2
    integer = centres.int()
    for (x, y), (w, h), label in zip(integer.tolist(), sizes.tolist(), labels.tolist(), strict=True):
        radius = max(0, int(gaussian_radius(math.ceil(h), math.ceil(w))))
        draw_gaussian(heatmap[label - 1], x, y, radius)
    return {"heatmap": heatmap, "index": (integer[:, 1] * width + integer[:, 0]).long(), "size": sizes,
            "offset": centres - integer.float()}


# --------------------------------------------------------------------------------------------- losses


def focal_loss(probabilities: Tensor, target: Tensor, alpha: float = 2.0, beta: float = 4.0) -> Tensor:
    """CenterNet's penalty-reduced focal loss: ``-(sum over cells with target 1 of (1-p)^a log p + sum
    over the others of (1-t)^b p^a log(1-p)) / (number of cells with target 1)``, the sum alone when
    there is none. ``probabilities`` are the sigmoid heatmap, clamped away from 0 and 1."""
    positive = target.eq(1).float()
    negative_weight = (1 - target).pow(beta) * (1 - positive)
    positive_loss = (torch.log(probabilities) * (1 - probabilities).pow(alpha) * positive).sum()
    negative_loss = (torch.log(1 - probabilities) * probabilities.pow(alpha) * negative_weight).sum()
    num_positive = positive.sum()
    return -(positive_loss + negative_loss) / num_positive.clamp(min=1)


def regression_l1_loss(prediction: Tensor, index: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """CenterNet's ``RegL1Loss``: L1 between ``prediction`` (B, 2, h, w) read at the object cells ``index``
    (B, M) and ``target`` (B, M, 2), summed over the ``mask``-ed objects and divided by their value count."""
    batch, channels = prediction.shape[:2]
    gathered = prediction.flatten(2).gather(2, index[:, None, :].expand(batch, channels, -1)).transpose(1, 2)
    weight = mask[..., None].expand_as(gathered).float()
    return F.l1_loss(gathered * weight, target * weight, reduction="sum") / (weight.sum() + 1e-4)


def _batch_targets(targets: list[dict[str, Tensor]], num_categories: int, output_size: tuple[int, int],
                   device: torch.device) -> dict[str, Tensor]:
    """Per-image targets padded to the batch's largest object count (``mask`` marks the real ones)."""
    encoded = [encode_targets(t["boxes"], t["labels"], num_categories, output_size) for t in targets]
    count = max(1, max(len(e["index"]) for e in encoded))
    batch = {"heatmap": torch.stack([e["heatmap"] for e in encoded]),
             "index": torch.zeros(len(encoded), count, dtype=torch.long),
             "size": torch.zeros(len(encoded), count, 2), "offset": torch.zeros(len(encoded), count, 2),
             "mask": torch.zeros(len(encoded), count, dtype=torch.bool)}
    for i, e in enumerate(encoded):
        n = len(e["index"])
        batch["index"][i, :n], batch["size"][i, :n], batch["offset"][i, :n] = e["index"], e["size"], e["offset"]
        batch["mask"][i, :n] = True
    return {key: value.to(device) for key, value in batch.items()}


# ------------------------------------------------------------------------------------------- decoding


def decode_detections(heatmap: Tensor, size: Tensor, offset: Tensor, topk: int = 100,
                      stride: int = OUTPUT_STRIDE) -> tuple[Tensor, Tensor, Tensor]:
    """CenterNet's ``ctdet_decode``: the ``topk`` highest heatmap peaks (cells equal to their 3x3 max)
    over all categories, each a box of the predicted size around its cell plus offset, no NMS.

    ``heatmap`` (B, K, h, w) probabilities, ``size`` and ``offset`` (B, 2, h, w). Returns ``boxes`` (B, k, 4)
    XYXY in input pixels (cells x ``stride``), ``scores`` (B, k) and ``labels`` (B, k) in ``1..K``.
    A negative size (an untrained model) decodes as an empty box, not an inverted one.
    """
    batch, categories, height, width = heatmap.shape
    peaks = heatmap * (F.max_pool2d(heatmap, 3, stride=1, padding=1) == heatmap).to(heatmap.dtype)
    scores, flat = peaks.reshape(batch, -1).topk(min(topk, categories * height * width))
    labels = torch.div(flat, height * width, rounding_mode="floor") + 1
    cell = flat % (height * width)
    ys = torch.div(cell, width, rounding_mode="floor").to(heatmap.dtype)
    xs = (cell % width).to(heatmap.dtype)
    index = cell[:, None, :].expand(batch, 2, -1)
    wh, shift = size.flatten(2).gather(2, index).clamp(min=0), offset.flatten(2).gather(2, index)
    cx, cy = xs + shift[:, 0], ys + shift[:, 1]
    boxes = torch.stack([cx - wh[:, 0] / 2, cy - wh[:, 1] / 2, cx + wh[:, 0] / 2, cy + wh[:, 1] / 2], dim=2)
    return boxes * stride, scores, labels


# ---------------------------------------------------------------------------------------------- model


def _head(in_channels: int, head_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, head_channels, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(head_channels, out_channels, 1))


class CenterNetHead(nn.Module):
    """The three CenterNet heads on one stride-4 map: ``{'heatmap': logits (K), 'size': (2), 'offset': (2)}``."""

    def __init__(self, in_channels: int, num_categories: int, head_channels: int = 256) -> None:
        super().__init__()
        self.heatmap = _head(in_channels, head_channels, num_categories)
        self.size = _head(in_channels, head_channels, 2)
        self.offset = _head(in_channels, head_channels, 2)
        for head in (self.heatmap, self.size, self.offset):
            for conv in head:
                if isinstance(conv, nn.Conv2d):
                    nn.init.zeros_(conv.bias)
        nn.init.constant_(self.heatmap[-1].bias, HEATMAP_PRIOR_BIAS)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"heatmap": self.heatmap(x), "size": self.size(x), "offset": self.offset(x)}


def _padded_side(side: int | Tensor) -> int | Tensor:
    """CenterNet's test padding ``(side | 31) + 1``, the next multiple of 32 above ``side`` (written with
    integer division so a traced export keeps it dynamic)."""
    return (side // SIZE_DIVISOR + 1) * SIZE_DIVISOR


class CenterNet(nn.Module):
    """CenterNet on a backbone that returns one stride-4 map of ``backbone.out_channels`` channels.

    ``num_classes`` counts the object categories (labels ``1..num_classes``). ``input_size`` is the side
    of the square training crops (a multiple of 32); ``detections_per_img`` the top-k of decoding.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, input_size: int = 512, head_channels: int = 256,
                 detections_per_img: int = 100, size_loss_weight: float = 0.1,
                 offset_loss_weight: float = 1.0) -> None:
        super().__init__()
        if input_size % SIZE_DIVISOR or input_size <= 0:
            lower = max(SIZE_DIVISOR, input_size // SIZE_DIVISOR * SIZE_DIVISOR)
            raise ConfigError(
                f"CenterNet input size {input_size} is not a multiple of the backbone's stride {SIZE_DIVISOR}: "
                f"use a multiple of {SIZE_DIVISOR}, e.g. {lower} or {lower + SIZE_DIVISOR} (CenterNet's 511 "
                f"crops are padded to 512)")
        self.backbone = backbone
        self.head = CenterNetHead(backbone.out_channels, num_classes, head_channels)
        self.num_classes = num_classes
        self.input_size = input_size
        self.detections_per_img = detections_per_img
        self.loss_weights = {"loss_heatmap": 1.0, "loss_size": size_loss_weight, "loss_offset": offset_loss_weight}
        self.register_buffer("image_mean", torch.tensor(IMAGE_MEAN).view(3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(IMAGE_STD).view(3, 1, 1), persistent=False)

    def _batch(self, images: list[Tensor]) -> Tensor:
        """Images padded with black at the bottom/right into one normalised batch (black, as outside the
        training crops): training crops to a multiple of 32, test images to ``(side | 31) + 1``
        (CenterNet's ``keep_res`` test input)."""
        if torch.jit.is_tracing():  # one image; sizes stay symbolic in the exported graph
            image = images[0]
            height, width = image.shape[-2], image.shape[-1]
            batch = F.pad(image, (0, _padded_side(width) - width, 0, _padded_side(height) - height))[None]
        else:
            sides = (max(image.shape[dim] for image in images) for dim in (-2, -1))
            if self.training:
                height, width = (-(-side // SIZE_DIVISOR) * SIZE_DIVISOR for side in sides)
            else:
                height, width = (_padded_side(side) for side in sides)
            batch = images[0].new_zeros(len(images), 3, height, width)
            for canvas, image in zip(batch, images, strict=True):
                canvas[:, :image.shape[-2], :image.shape[-1]].copy_(image)
        return (batch - self.image_mean) / self.image_std

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
                ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        if self.training and targets is None:
            raise ValueError("CenterNet in training mode needs targets (boxes and labels per image)")
        outputs = self.head(self.backbone(self._batch(images)))
        if self.training:
            return self.losses(outputs, targets)
        return self.postprocess(outputs)

    def losses(self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """The weighted focal, size and offset losses of a batch (CenterNet's ``CtdetLoss``)."""
        heatmap = outputs["heatmap"]
        target = _batch_targets(targets, self.num_classes, tuple(heatmap.shape[-2:]), heatmap.device)
        probabilities = heatmap.float().sigmoid().clamp(1e-4, 1 - 1e-4)
        losses = {
            "loss_heatmap": focal_loss(probabilities, target["heatmap"]),
            "loss_size": regression_l1_loss(outputs["size"].float(), target["index"], target["size"], target["mask"]),
            "loss_offset": regression_l1_loss(outputs["offset"].float(), target["index"], target["offset"],
                                              target["mask"]),
        }
        return {name: self.loss_weights[name] * value for name, value in losses.items()}

    def postprocess(self, outputs: dict[str, Tensor]) -> list[dict[str, Tensor]]:
        """Top-k peaks per image as ``{boxes (input pixels), scores, labels 1..K}``."""
        boxes, scores, labels = decode_detections(outputs["heatmap"].sigmoid(), outputs["size"], outputs["offset"],
                                                  self.detections_per_img)
        return [{"boxes": b, "scores": s, "labels": c} for b, s, c in zip(boxes, scores, labels, strict=True)]

    def complexity(self, input_size: tuple[int, int]) -> Complexity:
        """Params and GFLOPs of the backbone and the heads at ``input_size`` (a multiple of 32)."""
        body = complexity(self.backbone, input_size)
        heads = complexity(self.head, (self.backbone.out_channels, *(s // OUTPUT_STRIDE for s in input_size)))
        return Complexity(body.params + heads.params, (body.macs + heads.macs) / 1024**3, body.macs + heads.macs)


def build_centernet(backbone: nn.Module, num_classes: int, *, min_size: int = 512, max_size: int | None = None,
                    **options: Any) -> CenterNet:
    """:func:`~hrnet.tasks.detection.models.build_detector`'s builder: ``num_classes`` counts the
    background as torchvision's do; ``min_size`` is the square training input (``max_size`` is unused:
    test images keep their size)."""
    return CenterNet(backbone, num_classes - 1, input_size=options.pop("input_size", min_size), **options)


# -------------------------------------------------------------------------------------- training data


def _border(limit: int, side: int) -> int:
    """CenterNet's ``_get_border``: the margin random centres keep from the image edges."""
    i = 1
    while side - limit // i <= limit // i:
        i *= 2
    return limit // i


class CenterNetTrainTransform:
    """CenterNet's training crop: ``(uint8 image, target) -> (float image in [0, 1], target)``.

    The crop covers ``s = longer side x one of scales`` (CenterNet's 0.6, 0.7, ..., 1.3) around a random centre at least
    ``_border(128, side)`` from the edges, warped to ``input_size`` square (black outside the image);
    the image is flipped with ``flip_prob``; then, with ``color``, brightness, contrast and saturation
    jitter (+-0.4, in random order) and PCA lighting (std 0.1). Boxes are warped the same way and clipped to the crop;
    those left without area are dropped.
    """

    SCALES = tuple(round(0.6 + 0.1 * i, 1) for i in range(8))

    def __init__(self, input_size: int = 512, flip_prob: float = 0.5, color: bool = True,
                 scales: tuple[float, ...] = SCALES) -> None:
        if not scales or min(scales) <= 0:
            raise ConfigError(f"CenterNet crop scales must be positive multiples of the longer side, got {scales}")
        self.input_size = input_size
        self.flip_prob = flip_prob
        self.color = color
        self.scales = tuple(scales)

    def _warp(self, height: int, width: int) -> tuple[np.ndarray, bool]:
        """A continuous-coordinate affine ``x' = A x`` (2x3) of the random crop, and whether it flips."""
        scale = max(height, width) * self.scales[int(torch.randint(len(self.scales), ()))]
        centre = [float(torch.randint(_border(128, side), side - _border(128, side), ()))
                  for side in (width, height)]
        flip = bool(torch.rand(()) < self.flip_prob)
        k = self.input_size / scale
        if flip:  # mirror the image first (x -> width - x), the centre with it
            centre[0] = width - centre[0]
            matrix = np.array([[-k, 0, k * (width - centre[0])], [0, k, -k * centre[1]]])
        else:
            matrix = np.array([[k, 0, -k * centre[0]], [0, k, -k * centre[1]]])
        matrix[:, 2] += self.input_size / 2
        return matrix, flip

    def __call__(self, image: Tensor, target: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        height, width = image.shape[-2:]
        matrix, _ = self._warp(height, width)
        pixels = matrix.copy()  # pixel centres sit at +0.5 in continuous coordinates
        pixels[:, 2] += matrix[:, :2].sum(axis=1) * 0.5 - 0.5
        size = self.input_size
        array = cv2.warpAffine(np.ascontiguousarray(image.permute(1, 2, 0).numpy()), pixels, (size, size),
                               flags=cv2.INTER_LINEAR)
        warped = torch.from_numpy(array).permute(2, 0, 1).float() / 255
        if self.color:
            warped = self._jitter(warped)
        boxes = target["boxes"].as_subclass(Tensor).float().reshape(-1, 4)
        linear, shift = torch.from_numpy(matrix).float().split([2, 1], dim=1)
        corners = boxes.reshape(-1, 2) @ linear.T + shift.T
        xs, ys = corners[:, 0].reshape(-1, 2), corners[:, 1].reshape(-1, 2)
        boxes = torch.stack([xs.min(1).values, ys.min(1).values, xs.max(1).values, ys.max(1).values], 1).clamp(0, size)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        target = {**{k: v for k, v in target.items() if k not in ("boxes", "labels", "masks")},
                  "boxes": tv_tensors.BoundingBoxes(boxes[keep], format="XYXY", canvas_size=(size, size)),
                  "labels": torch.as_tensor(target["labels"])[keep]}
        return tv_tensors.Image(warped), target

    @staticmethod
    def _jitter(image: Tensor) -> Tensor:
        """CenterNet's ``color_aug`` on a float RGB image: brightness, contrast, saturation, lighting."""
        gray = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
        for step in torch.randperm(3).tolist():
            alpha = 1 + (torch.rand(()) * 0.8 - 0.4)
            if step == 0:  # brightness
                image = image * alpha
            elif step == 1:  # contrast: blend with the mean grey level
                image = image * alpha + gray.mean() * (1 - alpha)
            else:  # saturation: blend with the grey image
                image = image * alpha + gray * (1 - alpha)
        strength = torch.randn(3) * 0.1 * torch.tensor(EIGEN_VALUES)
        return image + (torch.tensor(EIGEN_VECTORS) @ strength)[:, None, None]
