"""Bottom-up (HigherHRNet) inference: whole image -> heatmaps and tags -> grouped people, no boxes.

The test-time recipe is the official ``tools/valid.py``:

* each test scale ``s`` resizes the image so that its short side is ``s * input_size`` rounded up to a
  multiple of 64 (:func:`multiscale_size`, ``resize_align_multi_scale``), keeping the aspect ratio;
* :func:`network_outputs` averages the heatmaps of all outputs (the 1/4 one upsampled to the last
  output's size) and keeps the tags of the outputs that have them; with the flip test the mirrored image's
  outputs are flipped back and their joints swapped with the meta's flip index (heatmaps and per-joint
  tags), the heatmaps averaged with the plain ones and the tags kept beside them. With ``project2image``
  (official) both are resized to the image's size at scale 1;
* :func:`aggregate_scales` averages the heatmaps over the scales and concatenates the tag maps of scale 1
  along a last axis (one tag vector per pixel: plain and flipped tags);
* :func:`~hrnet.tasks.pose.grouping.group_people` groups them and the people are mapped back to the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .grouping import GroupingParams, group_people
from .meta import KeypointMeta
from .transforms import get_affine_transform, to_input_tensor, transform_preds

__all__ = ["multiscale_size", "resize_align", "network_outputs", "aggregate_scales", "people_to_image",
           "bottomup_instances", "coco_results", "BottomUpPredictor"]


def _up64(v: float) -> int:
    return int((v + 63) // 64 * 64)


def multiscale_size(height: int, width: int, input_size: int, scale: float, min_scale: float
                    ) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Official ``get_multi_scale_size``: the resized ``(w, h)`` at test scale ``scale``, and the
    ``center``/``scale`` (in 200-pixel units) of the warp. The short side at ``min_scale`` is a
    multiple of 64, the other sizes scale from it."""
    center = np.array([int(width / 2.0 + 0.5), int(height / 2.0 + 0.5)])
    min_input = _up64(min_scale * input_size)
    ratio = scale / min_scale
    if width < height:
        w_resized = int(min_input * ratio)
        h_resized = int(_up64(min_input / width * height) * ratio)
        scale_w = width / 200.0
        scale_h = h_resized / w_resized * width / 200.0
    else:
        h_resized = int(min_input * ratio)
        w_resized = int(_up64(min_input / height * width) * ratio)
        scale_h = height / 200.0
        scale_w = w_resized / h_resized * height / 200.0
    return (w_resized, h_resized), center, np.array([scale_w, scale_h])


def resize_align(image: np.ndarray, input_size: int, scale: float, min_scale: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official ``resize_align_multi_scale``: the warped image, and the ``center``/``scale`` of the warp."""
    size, center, warp_scale = multiscale_size(*image.shape[:2], input_size, scale, min_scale)
    trans = get_affine_transform(center, warp_scale, 0, size)
    return cv2.warpAffine(image, trans, size), center, warp_scale


def _resize(maps: Tensor, size_hw: Sequence[int]) -> Tensor:
    return F.interpolate(maps, size=tuple(size_hw), mode="bilinear", align_corners=False)


@torch.no_grad()
def network_outputs(model: nn.Module, image: Tensor, num_joints: int, flip_index: Sequence[int] | None = None,
                    project_size: tuple[int, int] | None = None, heatmap_outputs: Sequence[bool] | None = None
                    ) -> tuple[list[Tensor], list[Tensor]]:
    """Official ``get_multi_stage_outputs`` for one normalised image ``(1, 3, H, W)``.

    Returns the heatmaps (one average per pass: plain, then flipped when ``flip_index`` is given) and the
    tag maps (per pass, per output that has tags), at the last output's resolution, or at
    ``project_size`` (w, h) when given. ``heatmap_outputs`` selects the outputs whose heatmaps are
    averaged (official ``TEST.WITH_HEATMAPS``; default all).
    """
    passes = [(image, False)] + ([(image.flip(3), True)] if flip_index is not None else [])
    heatmaps, tags = [], []
    for batch, flipped in passes:
        outputs = model(batch)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        use = list(heatmap_outputs) if heatmap_outputs is not None else [True] * len(outputs)
        if len(use) != len(outputs):
            raise ValueError(f"heatmap_outputs has {len(use)} entries for a model with {len(outputs)} outputs")
        size = outputs[-1].shape[2:]
        total, count = 0, 0
        for i, out in enumerate(outputs):
            if i != len(outputs) - 1:
                out = _resize(out, size)
            if flipped:
                out = out.flip(3)
            if use[i]:
                hm = out[:, :num_joints]
                total, count = total + (hm[:, list(flip_index)] if flipped else hm), count + 1
            if out.size(1) > num_joints:
                tag = out[:, num_joints:]
                tags.append(tag[:, list(flip_index)] if flipped and tag.size(1) == num_joints else tag)
        heatmaps.append(total / count)
    if project_size is not None:
        h_w = (project_size[1], project_size[0])
        heatmaps = [_resize(h, h_w) for h in heatmaps]
        tags = [_resize(t, h_w) for t in tags]
    return heatmaps, tags


def aggregate_scales(per_scale: Sequence[tuple[float, list[Tensor], list[Tensor]]], project2image: bool = True
                     ) -> tuple[Tensor, Tensor]:
    """Official ``aggregate_results`` over the test scales (largest first): the scale-averaged heatmaps
    ``(1, K, H, W)`` (flip passes averaged first) and the tags ``(1, K, H, W, L)`` of scale 1 (of the
    only scale when there is one), resized to the heatmaps when not projected."""
    final: Tensor | None = None
    tag_list: list[Tensor] = []
    for scale, heatmaps, tags in per_scale:
        if scale == 1 or len(per_scale) == 1:
            if final is not None and not project2image:
                tags = [_resize(t, final.shape[2:]) for t in tags]
            tag_list.extend(t.unsqueeze(4) for t in tags)
        average = sum(heatmaps) / len(heatmaps)
        if final is not None and not project2image:
            average = _resize(average, final.shape[2:])
        final = average if final is None else final + average
    if final is None or not tag_list:
        raise ValueError("no test scale produced heatmaps and tags (the scales must include 1)")
    return final / len(per_scale), torch.cat(tag_list, dim=4)


def people_to_image(people: np.ndarray, center: np.ndarray, scale: np.ndarray, heatmap_size: tuple[int, int]
                    ) -> np.ndarray:
    """``(P, K, 3 + L)`` heatmap-pixel people -> image coordinates (official ``get_final_preds``); the
    other columns are kept."""
    out = people.astype(np.float64).copy()
    for person in out:
        person[:, :2] = transform_preds(person[:, :2], center, scale, heatmap_size)[:, :2]
    return out


def bottomup_instances(people: np.ndarray, scores: np.ndarray, image_id: Any = None) -> list[dict[str, Any]]:
    """People in image coordinates -> instances: ``keypoints (K, 3)``, ``score`` (official: the mean
    joint value before refinement), ``tags`` and the keypoints' bounding ``box`` (xywh)."""
    instances = []
    for person, score in zip(people, scores, strict=True):
        kpts = person[:, :3]
        lo, hi = kpts[:, :2].min(axis=0), kpts[:, :2].max(axis=0)
        instances.append({"image_id": image_id, "keypoints": kpts, "score": float(score), "tags": person[:, 3:],
                          "box": [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]})
    return instances


class BottomUpPredictor:
    """Everyone's pose in RGB images with a bottom-up model, the official test recipe (module docstring).

    ``input_size`` is the short side at scale 1 (512 or 640 officially); ``scales`` the test scales
    (official single-scale ``(1,)``, multi-scale ``(2, 1, 0.5)``); ``grouping`` the grouping settings.
    Calling it with a list of images returns one list of instances per image (see
    :func:`bottomup_instances`); the ``boxes``/``scores`` arguments of the top-down predictor are accepted
    and ignored, so :func:`~hrnet.tasks.pose.inference.predict_video` runs it on videos.
    """

    def __init__(self, model: nn.Module, meta: KeypointMeta, input_size: int = 512,
                 scales: Sequence[float] = (1.0,), flip_test: bool = True, project2image: bool = True,
                 grouping: GroupingParams | None = None, heatmap_outputs: Sequence[bool] | None = None) -> None:
        if 1 not in [float(s) for s in scales]:
            raise ValueError(f"test scales {list(scales)} must include 1 (its tags are the ones grouped)")
        self.model, self.meta, self.input_size = model, meta, int(input_size)
        self.scales = sorted((float(s) for s in scales), reverse=True)
        self.flip_test, self.project2image = flip_test, project2image
        self.grouping = grouping or GroupingParams()
        self.heatmap_outputs = heatmap_outputs

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def maps(self, image: np.ndarray) -> tuple[Tensor, Tensor, np.ndarray, np.ndarray]:
        """Heatmaps ``(1, K, H, W)``, tags ``(1, K, H, W, L)`` and the warp ``center``/``scale`` of one image."""
        min_scale = min(self.scales)
        base_size, center, scale = multiscale_size(*image.shape[:2], self.input_size, 1.0, min_scale)
        flip_index = self.meta.flip_index if self.flip_test else None
        per_scale = []
        for s in self.scales:
            resized, center, scale = resize_align(image, self.input_size, s, min_scale)
            x = to_input_tensor(resized).unsqueeze(0).to(self.device)
            heatmaps, tags = network_outputs(self.model, x, self.meta.num_keypoints, flip_index,
                                             base_size if self.project2image else None, self.heatmap_outputs)
            per_scale.append((s, [h.float() for h in heatmaps], [t.float() for t in tags]))
        final, tags = aggregate_scales(per_scale, self.project2image)
        return final, tags, center, scale

    def predict_one(self, image: np.ndarray, image_id: Any = None) -> list[dict[str, Any]]:
        heatmaps, tags, center, scale = self.maps(image)
        people, scores = group_people(heatmaps[0], tags[0], self.grouping)
        size = (heatmaps.size(3), heatmaps.size(2))
        return bottomup_instances(people_to_image(people, center, scale, size), scores, image_id)

    def __call__(self, images: Sequence[np.ndarray], boxes: Any = None, scores: Any = None
                 ) -> list[list[dict[str, Any]]]:
        was_training = self.model.training
        self.model.eval()
        try:
            return [self.predict_one(image) for image in images]
        finally:
            self.model.train(was_training)



def coco_results(instances: Sequence[dict[str, Any]], category_id: int = 1) -> list[dict[str, Any]]:
    """COCO keypoint result records of bottom-up instances (official ``_write_coco_keypoint_results``:
    flat (x, y, value) keypoints, the person's score, and the keypoints' bounding box)."""
    return [
        {
            "image_id": inst["image_id"],
            "category_id": category_id,
            "keypoints": [float(v) for v in np.asarray(inst["keypoints"], dtype=np.float64).reshape(-1)],
            "score": float(inst["score"]),
            "bbox": [float(v) for v in inst["box"]],
        }
        for inst in instances
    ]
