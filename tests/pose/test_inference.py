"""The batched top-down predictor, box files and overlays, with a stand-in network of known output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from hrnet.errors import DataError
from hrnet.tasks.pose.codecs import MSRAHeatmap
from hrnet.tasks.pose.inference import TopDownPredictor, boxes_for_image, load_boxes
from hrnet.tasks.pose.meta import COCO_META
from hrnet.tasks.pose.visualize import draw_poses


class CentreNet(nn.Module):
    """Puts every keypoint's peak on heatmap pixel (12, 16) of a 24x32 map, i.e. the crop centre."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = torch.zeros(x.shape[0], 17, 32, 24)
        out[:, :, 16, 12] = 1.0
        return out * self.scale


def _predictor(**kwargs) -> TopDownPredictor:
    return TopDownPredictor(CentreNet(), MSRAHeatmap((96, 128), (24, 32), 2.0), COCO_META, flip_test=False, **kwargs)


def test_keypoints_come_back_to_the_box_centre_in_image_pixels():
    images = [np.zeros((200, 300, 3), np.uint8), np.zeros((100, 80, 3), np.uint8)]
    boxes = [np.array([[10, 20, 60, 120], [150, 30, 90, 100]]), None]
    out = _predictor(nms=False)(images, boxes, [np.array([0.9, 0.5]), None])
    assert [len(x) for x in out] == [2, 1]
    np.testing.assert_allclose(out[0][0]["keypoints"][:, :2], np.tile([40, 80], (17, 1)), atol=1e-3)
    np.testing.assert_allclose(out[0][1]["keypoints"][:, :2], np.tile([195, 80], (17, 1)), atol=1e-3)
    np.testing.assert_allclose(out[1][0]["keypoints"][:, :2], np.tile([40, 50], (17, 1)), atol=1e-3)  # whole image
    assert out[0][1]["box_score"] == 0.5 and out[0][1]["score"] == pytest.approx(0.5)
    assert out[1][0]["box"] == [0.0, 0.0, 80.0, 100.0]


def test_crops_of_all_images_share_batches():
    images = [np.zeros((120, 120, 3), np.uint8)] * 3
    boxes = [np.array([[0, 0, 50, 60], [10, 10, 40, 40]])] * 3
    small = _predictor(batch_size=4, nms=False)
    a = small(images, boxes)
    assert small.model.calls == 2  # 6 crops in batches of 4
    b = _predictor(batch_size=64, nms=False)(images, boxes)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose([i["keypoints"] for i in x], [i["keypoints"] for i in y])


def test_duplicates_are_suppressed_and_empty_inputs_work():
    image = np.zeros((100, 100, 3), np.uint8)
    out = _predictor()([image], [np.array([[10, 10, 40, 60], [10, 10, 40, 60], [60, 5, 30, 60]])])
    assert len(out[0]) == 2
    assert _predictor()([image], [np.zeros((0, 4))]) == [[]]
    assert _predictor()([], []) == []
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        _predictor()([image], [np.zeros((2, 4))], [np.ones(1)])


def test_flip_test_runs_the_mirrored_batch():
    predictor = TopDownPredictor(CentreNet(), MSRAHeatmap((96, 128), (24, 32), 2.0), COCO_META)
    predictor([np.zeros((50, 50, 3), np.uint8)])
    assert predictor.model.calls == 2 and predictor.flip_shift


def test_box_files(tmp_path):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps([
        {"image_id": 785, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.8},
        {"image_id": 785, "category_id": 2, "bbox": [0, 0, 1, 1], "score": 0.9},
        {"file_name": "a.png", "bbox": [5, 6, 7, 8]},
    ]))
    table = load_boxes(path)
    boxes, scores = boxes_for_image(table, tmp_path / "000000000785.jpg")
    np.testing.assert_array_equal(boxes, [[1, 2, 3, 4]])
    np.testing.assert_array_equal(scores, [0.8])
    assert boxes_for_image(table, tmp_path / "a.png")[1][0] == 1.0
    assert boxes_for_image(table, tmp_path / "b.png") is None
    path.write_text(json.dumps([{"bbox": [1, 2, 3, 4]}]))
    with pytest.raises(DataError, match="entry 0"):
        load_boxes(path)
    path.write_text("{}")
    with pytest.raises(DataError, match="list"):
        load_boxes(path)


def test_overlay_draws_visible_keypoints_only():
    image = np.zeros((100, 100, 3), np.uint8)
    kpts = np.zeros((17, 3))
    kpts[:, :2] = [50, 50]
    kpts[5] = [20, 20, 0.9]  # left shoulder, confident
    kpts[6] = [80, 20, 0.1]  # right shoulder, hidden
    out = draw_poses(image, [{"keypoints": kpts, "box": [10, 10, 80, 80], "score": 0.7}], COCO_META)
    assert out.shape == image.shape and not image.any()
    assert out[20, 20].any() and not out[20, 80].any()
