"""Oracle: ground-truth keypoints rendered as heatmaps with ideal tags, decoded and grouped, give COCO AP ~1.

This pins the whole bottom-up decoding path (test resize geometry, peak NMS, tag matching, adjustment,
refinement, mapping back to the image, result records) against pycocotools on the real sample images.
"""

import json

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

from hrnet.tasks.pose.bottomup import bottomup_instances, coco_results, multiscale_size, people_to_image
from hrnet.tasks.pose.evaluation import evaluate_coco_keypoints
from hrnet.tasks.pose.grouping import GroupingParams, group_people
from hrnet.tasks.pose.transforms import affine_transform, get_affine_transform


def render(people: list[np.ndarray], size: tuple[int, int], sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps as the official targets (Gaussians at the floored positions, cut off 3 sigma + 1 away) and
    ideal tags: every pixel of every tag map holds the tag of the person with the nearest keypoint
    (persons' tags 2 apart)."""
    w, h = size
    k = people[0].shape[0] if people else 17
    heatmaps = np.zeros((k, h, w), np.float32)
    seeds = np.zeros((h, w), np.int32)
    radius = int(3 * sigma + 1)
    offsets = np.arange(-radius, radius + 1)
    g = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2)).astype(np.float32)
    for p, joints in enumerate(people):
        for j, (x, y, v) in enumerate(joints):
            if v <= 0 or not (0 <= x < w and 0 <= y < h):
                continue
            x, y = int(x), int(y)
            seeds[y, x] = p + 1
            x0, x1, y0, y1 = max(0, x - radius), min(w, x + radius + 1), max(0, y - radius), min(h, y + radius + 1)
            patch = g[y0 - y + radius : y1 - y + radius, x0 - x + radius : x1 - x + radius]
            heatmaps[j, y0:y1, x0:x1] = np.maximum(heatmaps[j, y0:y1, x0:x1], patch)
    if seeds.any():
        _, (iy, ix) = distance_transform_edt(seeds == 0, return_indices=True)
        owner = seeds[iy, ix]
    else:
        owner = seeds
    tags = np.broadcast_to(2.0 * owner.astype(np.float32), (k, h, w))
    return heatmaps, np.ascontiguousarray(tags)


def test_ground_truth_oracle_ap(shared_data):
    ann_file = shared_data / "coco_keypoints" / "annotations" / "person_keypoints_val2017.json"
    gt = json.loads(ann_file.read_text())
    anns: dict[int, list[dict]] = {}
    for a in gt["annotations"]:
        if not a.get("iscrowd") and a["num_keypoints"] > 0:
            anns.setdefault(a["image_id"], []).append(a)
    results = []
    for img in gt["images"]:
        size, center, scale = multiscale_size(img["height"], img["width"], 512, 1.0, 1.0)
        trans = get_affine_transform(center, scale, 0, size)
        people = []
        for a in anns.get(img["id"], []):
            kpts = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
            kpts[:, :2] = affine_transform(kpts[:, :2], trans)
            people.append(kpts)
        heatmaps, tags = render(people, size)
        grouped, scores = group_people(torch.from_numpy(heatmaps), torch.from_numpy(tags), GroupingParams())
        instances = bottomup_instances(people_to_image(grouped, center, scale, size), scores, img["id"])
        results.extend(coco_results(instances))
    stats = evaluate_coco_keypoints(ann_file, results, verbose=False)
    print(f"oracle AP {stats['AP']:.4f} AR {stats['AR']:.4f}")
    assert stats["AP"] >= 0.99, stats
    assert stats["AR"] >= 0.99, stats
