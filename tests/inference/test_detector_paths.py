"""A person detector in ONNX Runtime (``detector_path="onnxruntime"``): exported once per image size, the
same persons as the eager model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrnet.errors import ConfigError
from hrnet.inference.deployed import OnnxDetector, deploy_person_detector
from hrnet.tasks.detection.person import PersonDetector

pytest.importorskip("onnxruntime")


class BrightBoxes(torch.nn.Module):
    """A detector with torchvision's interface whose boxes depend on the image and its size: the bright
    region's bounding box (as person, label 1) and the whole image (label 3), scored by brightness."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, images):
        outputs = []
        for image in images:
            height, width = image.shape[-2:]
            bright = (image.mean(0) > 0.5).float()
            ys = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
            xs = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
            inside = bright > 0
            big = torch.tensor(1e9)
            x0 = torch.where(inside, xs, big).min()
            y0 = torch.where(inside, ys, big).min()
            x1 = torch.where(inside, xs + 1, -big).max()
            y1 = torch.where(inside, ys + 1, -big).max()
            whole = torch.stack([torch.zeros(()), torch.zeros(()), xs[0, -1] + 1, ys[-1, 0] + 1])
            boxes = torch.stack([torch.stack([x0, y0, x1, y1]), whole])
            scores = torch.stack([bright.mean(), image.mean()]) * self.scale
            outputs.append({"boxes": boxes, "labels": torch.tensor([1, 3]), "scores": scores})
        return outputs


def _image(height, width, box):
    image = np.zeros((height, width, 3), np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = 220
    return image


def test_onnxruntime_detector_finds_the_eager_persons_at_every_size():
    eager = PersonDetector(BrightBoxes(), score_threshold=0.0)
    ort = deploy_person_detector(eager, "onnxruntime")
    assert isinstance(ort.model, OnnxDetector)
    for height, width, box in [(60, 80, (10, 5, 30, 50)), (90, 50, (20, 30, 45, 80)), (60, 80, (0, 0, 8, 8))]:
        image = _image(height, width, box)
        boxes, scores = ort(image)
        expected, expected_scores = eager(image)
        np.testing.assert_allclose(boxes, expected, atol=1e-4)
        np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
        x0, y0, x1, y1 = box
        np.testing.assert_allclose(boxes, [[x0, y0, x1 - x0, y1 - y0]], atol=1e-4)  # xywh of the person only
    assert sorted(ort.model.runners) == [(60, 80), (90, 50)]  # one export per image size


def test_detector_path_errors():
    with pytest.raises(ConfigError, match="unknown detector path 'onnx'.*onnxruntime"):
        deploy_person_detector(PersonDetector(BrightBoxes()), "onnx")
    with pytest.raises(ConfigError, match="not a function"):
        deploy_person_detector(lambda image: (np.zeros((0, 4)), np.zeros(0)), "onnxruntime")
    eager = PersonDetector(BrightBoxes())
    assert deploy_person_detector(eager, "eager") is eager
