"""Associative-embedding grouping: bottom-up heatmaps and tags -> people (HigherHRNet's ``HeatmapParser``).

The steps follow the official ``lib/core/group.py`` so that groupings and scores are the same:

1. :func:`top_candidates` — max-pool NMS on each joint's heatmap, then the ``max_num_people`` highest
   peaks per joint with their (x, y) and tag vectors;
2. :func:`match_by_tag` — joints are visited in the official order (head, shoulders, hips, then limbs);
   the first joint type seen starts one person per candidate above ``detection_threshold``; every later
   candidate is assigned to a person by a minimum-cost assignment (``scipy.optimize.linear_sum_assignment``
   in place of the official ``munkres``) on the cost ``round(tag distance) * 100 - heatmap value``
   against each person's mean tag, and joins that person when the distance is under ``tag_threshold``,
   else starts a new one. As officially, a person is keyed by the first tag value of the joint that
   started it;
3. :func:`adjust` — the quarter-pixel step towards the higher neighbour, plus the half-pixel centre;
4. :func:`refine` — each joint a person lacks is taken at the heatmap maximum penalised by the rounded
   distance to the person's mean tag.

A person's score is the mean of its joints' heatmap values after matching and before refinement (joints
not found count as 0), as the official evaluation writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

__all__ = ["GroupingParams", "OFFICIAL_JOINT_ORDER", "grouping_order", "heatmap_nms", "top_candidates",
           "match_by_tag", "adjust", "refine", "group_people"]

#: the order in which the official code visits COCO joints when matching (0-based)
OFFICIAL_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
#: the cost given to the dummy columns that let a candidate start a new person
_NEW_PERSON_COST = 1e10


@dataclass(frozen=True)
class GroupingParams:
    """The official ``TEST`` grouping settings (HigherHRNet's COCO/CrowdPose test values as defaults)."""

    #: candidates kept per joint, and the most people matched against (``DATASET.MAX_NUM_PEOPLE``)
    max_num_people: int = 30
    #: a heatmap peak below this is no candidate (``TEST.DETECTION_THRESHOLD``)
    detection_threshold: float = 0.1
    #: a candidate joins a person when its tag is closer than this (``TEST.TAG_THRESHOLD``)
    tag_threshold: float = 1.0
    #: subtract the heatmap value from the rounded tag distance in the matching cost
    use_detection_val: bool = True
    #: stop matching further joints once ``max_num_people`` people exist
    ignore_too_much: bool = False
    #: max-pool window of the peak NMS (``TEST.NMS_KERNEL``; padding keeps the size)
    nms_kernel: int = 5
    #: quarter-pixel adjustment of matched joints (``TEST.ADJUST``)
    adjust: bool = True
    #: fill each person's missing joints from the heatmaps (``TEST.REFINE``)
    refine: bool = True

    def __post_init__(self) -> None:
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ValueError(f"nms_kernel must be a positive odd number, got {self.nms_kernel}")
        if self.max_num_people < 1:
            raise ValueError(f"max_num_people must be at least 1, got {self.max_num_people}")


def grouping_order(num_joints: int) -> list[int]:
    """The official visiting order restricted to ``num_joints`` (CrowdPose's 14 get the official prefix),
    followed by any joints beyond COCO's 17 in index order."""
    order = [j for j in OFFICIAL_JOINT_ORDER if j < num_joints]
    return order + list(range(len(OFFICIAL_JOINT_ORDER), num_joints))


def heatmap_nms(heatmaps: Tensor, kernel: int) -> Tensor:
    """Zero every value that is not the maximum of its ``kernel`` x ``kernel`` window."""
    pooled = F.max_pool2d(heatmaps, kernel, stride=1, padding=(kernel - 1) // 2)
    return heatmaps * torch.eq(pooled, heatmaps).to(heatmaps.dtype)


def _per_joint_tags(tags: Tensor, num_joints: int) -> Tensor:
    """Tags as ``(K, H, W, L)``: a ``(K, H, W)`` map gets ``L = 1``; one shared tag map is used for every joint."""
    if tags.dim() == 3:
        tags = tags.unsqueeze(-1)
    if tags.size(0) == 1 and num_joints > 1:
        tags = tags.expand(num_joints, -1, -1, -1)
    return tags


def top_candidates(heatmaps: Tensor, tags: Tensor, params: GroupingParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``max_num_people`` strongest NMS peaks of each joint of one image.

    ``heatmaps`` is ``(K, H, W)``, ``tags`` ``(K, H, W)`` or ``(K, H, W, L)``. Returns ``tags (K, M, L)``,
    integer ``locations (K, M, 2)`` as (x, y) and ``values (K, M)``.
    """
    k, h, w = heatmaps.shape
    peaks = heatmap_nms(heatmaps[None], params.nms_kernel)[0].reshape(k, h * w)
    values, index = peaks.topk(min(params.max_num_people, h * w), dim=1)
    tags = _per_joint_tags(tags, k).reshape(k, h * w, -1)
    picked = torch.gather(tags, 1, index[:, :, None].expand(-1, -1, tags.size(2)))
    locations = torch.stack((index % w, torch.div(index, w, rounding_mode="floor")), dim=2)
    return picked.cpu().numpy(), locations.cpu().numpy(), values.cpu().numpy()


def match_by_tag(tags: np.ndarray, locations: np.ndarray, values: np.ndarray, params: GroupingParams,
                 order: list[int] | None = None) -> np.ndarray:
    """Group one image's candidates into people: ``(P, K, 3 + L)`` float32 rows of (x, y, value, tag...),
    zeros for joints a person lacks. See the module docstring for the rule."""
    num_joints, _, tag_dim = tags.shape
    people: dict[float, np.ndarray] = {}
    person_tags: dict[float, list[np.ndarray]] = {}

    def start_person(candidate: np.ndarray, tag: np.ndarray, joint: int) -> None:
        key = float(tag[0])
        people.setdefault(key, np.zeros((num_joints, 3 + tag_dim)))[joint] = candidate
        person_tags[key] = [tag]

    for joint in order if order is not None else grouping_order(num_joints):
        candidates = np.concatenate((locations[joint], values[joint][:, None], tags[joint]), axis=1)
        keep = candidates[:, 2] > params.detection_threshold
        candidates, joint_tags = candidates[keep], tags[joint][keep]
        if len(candidates) == 0:
            continue
        if not people:
            for candidate, tag in zip(candidates, joint_tags, strict=True):
                start_person(candidate, tag, joint)
            continue
        keys = list(people)[: params.max_num_people]
        if params.ignore_too_much and len(keys) == params.max_num_people:
            continue
        mean_tags = np.array([np.mean(person_tags[key], axis=0) for key in keys])
        distance = np.linalg.norm(candidates[:, None, 3:] - mean_tags[None], ord=2, axis=2)
        cost = np.round(distance) * 100 - candidates[:, 2:3] if params.use_detection_val else distance
        num_new, num_people = cost.shape
        if num_new > num_people:
            cost = np.concatenate((cost, np.full((num_new, num_new - num_people), _NEW_PERSON_COST)), axis=1)
        for row, col in zip(*linear_sum_assignment(cost), strict=True):
            if col < num_people and distance[row, col] < params.tag_threshold:
                people[keys[col]][joint] = candidates[row]
                person_tags[keys[col]].append(joint_tags[row])
            else:
                start_person(candidates[row], joint_tags[row], joint)
    if not people:
        return np.zeros((0, num_joints, 3 + tag_dim), dtype=np.float32)
    return np.array(list(people.values())).astype(np.float32)


def _quarter_step(heatmap: np.ndarray, x: int, y: int) -> tuple[float, float]:
    """+-0.25 along x and y towards the higher of the two neighbours (borders clamp)."""
    h, w = heatmap.shape
    dx = 0.25 if heatmap[y, min(x + 1, w - 1)] > heatmap[y, max(x - 1, 0)] else -0.25
    dy = 0.25 if heatmap[min(y + 1, h - 1), x] > heatmap[max(y - 1, 0), x] else -0.25
    return dx, dy


def adjust(people: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Move each found joint (value > 0) a quarter pixel towards its higher neighbour and to the pixel
    centre (+0.5), in place; ``heatmaps`` is ``(K, H, W)``."""
    for person in people:
        for joint, row in enumerate(person):
            if row[2] > 0:
                x, y = row[0], row[1]
                dx, dy = _quarter_step(heatmaps[joint], int(x), int(y))
                row[0], row[1] = x + dx + 0.5, y + dy + 0.5
    return people


def refine(heatmaps: np.ndarray, tags: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Fill the joints ``person`` lacks (value 0) in place, each at the maximum of its heatmap minus the
    rounded distance of the tags there to the person's mean tag, with the quarter-pixel adjustment.

    ``heatmaps`` is ``(K, H, W)``, ``tags`` ``(K, H, W)`` or ``(K, H, W, L)``, ``person`` ``(K, 3 + L)``.
    """
    if tags.ndim == 3:
        tags = tags[..., None]
    num_joints, h, w = heatmaps.shape
    found = [tags[j, y, x] for j, (x, y) in enumerate(person[:, :2].astype(np.int32)) if person[j, 2] > 0]
    mean_tag = np.mean(found, axis=0)
    distance = (((tags - mean_tag[None, None, None, :]) ** 2).sum(axis=3)) ** 0.5
    penalised = (heatmaps - np.round(distance)).reshape(num_joints, -1)
    for joint, flat in enumerate(penalised.argmax(axis=1)):
        y, x = divmod(int(flat), w)
        value = heatmaps[joint, y, x]
        if value > 0 and person[joint, 2] == 0:
            dx, dy = _quarter_step(heatmaps[joint], x, y)
            person[joint, :3] = (x + 0.5 + dx, y + 0.5 + dy, value)
    return person


def group_people(heatmaps: Tensor, tags: Tensor, params: GroupingParams | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One image's people from its heatmaps ``(K, H, W)`` and tags ``(K, H, W[, L])``.

    Returns ``people (P, K, 3 + L)`` — (x, y, heatmap value, tags) in heatmap pixels — and their scores
    ``(P,)``, the mean joint value before refinement as officially.
    """
    params = params or GroupingParams()
    heatmaps, tags = heatmaps.detach().float(), tags.detach().float()
    people = match_by_tag(*top_candidates(heatmaps, tags, params), params)
    heatmaps_np = heatmaps.cpu().numpy()
    if params.adjust:
        people = adjust(people, heatmaps_np)
    scores = people[:, :, 2].mean(axis=1) if len(people) else np.zeros(0, dtype=np.float32)
    if params.refine and len(people):
        tags_np = _per_joint_tags(tags, heatmaps.size(0)).cpu().numpy()
        for person in people:
            refine(heatmaps_np, tags_np, person)
    return people, scores
