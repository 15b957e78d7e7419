"""CrowdPose: its keypoint meta and its evaluation (AP easy/medium/hard by crowd index)."""

import json

import numpy as np
import pytest

from hrnet.errors import DataError
from hrnet.tasks.pose.evaluation import crowd_index_split, evaluate_crowdpose_keypoints
from hrnet.tasks.pose.meta import CROWDPOSE_META, resolve_meta


def test_crowdpose_meta():
    meta = resolve_meta("crowdpose")
    assert meta is CROWDPOSE_META and meta.num_keypoints == 14
    assert meta.flip_index == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13]  # official FLIP_CONFIG
    assert meta.keypoints[-2:] == ("head_top", "neck")
    assert np.allclose(np.asarray(meta.sigmas) * 10, [.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89,
                                                        .79, .79])


def _person(rng, x0, y0):
    kpts = np.zeros((14, 3))
    kpts[:, 0] = x0 + rng.uniform(0, 60, 14)
    kpts[:, 1] = y0 + rng.uniform(0, 120, 14)
    kpts[:, 2] = 2
    return kpts


@pytest.fixture
def crowdpose_file(tmp_path):
    """Three images (crowd index 0.05, 0.5, 0.9), two people each, CrowdPose-style (no 'area')."""
    rng = np.random.default_rng(0)
    images, anns, people = [], [], {}
    for i, crowd in enumerate((0.05, 0.5, 0.9), start=1):
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 400, "height": 300, "crowdIndex": crowd})
        for p in range(2):
            kpts = _person(rng, 40 + 150 * p, 40)
            x, y = kpts[:, 0].min(), kpts[:, 1].min()
            box = [x, y, kpts[:, 0].max() - x, kpts[:, 1].max() - y]
            anns.append({"id": 10 * i + p, "image_id": i, "category_id": 1, "iscrowd": 0, "num_keypoints": 14,
                         "keypoints": kpts.reshape(-1).tolist(), "bbox": box})
            people[10 * i + p] = kpts
    cat = {"id": 1, "name": "person", "keypoints": list(CROWDPOSE_META.keypoints), "skeleton": []}
    path = tmp_path / "crowdpose_val.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [cat]}))
    return path, people


def test_crowdpose_evaluation_splits(crowdpose_file):
    path, people = crowdpose_file
    results = []
    for ann_id, kpts in people.items():
        image_id = ann_id // 10
        shifted = kpts.copy()
        if image_id == 3:  # the hard image's predictions are 25 px off: no match at any OKS threshold
            shifted[:, :2] += 25
        results.append({"image_id": image_id, "category_id": 1, "keypoints": shifted.reshape(-1).tolist(),
                        "score": 0.9})
    stats = evaluate_crowdpose_keypoints(path, results, CROWDPOSE_META.sigmas, verbose=False)
    assert stats["AP_easy"] == pytest.approx(1.0) and stats["AP_medium"] == pytest.approx(1.0)
    assert stats["AP_hard"] == pytest.approx(0.0)
    assert 0.5 < stats["AP"] < 1.0 and stats["AR"] == pytest.approx(2 / 3, abs=1e-6)


def test_crowd_index_split_needs_crowd_index():
    assert crowd_index_split([{"id": 1, "crowdIndex": 0.1}, {"id": 2, "crowdIndex": 0.2},
                              {"id": 3, "crowdIndex": 0.8}]) == ([1], [2], [3])
    with pytest.raises(DataError, match="crowdIndex"):
        crowd_index_split([{"id": 7}])
