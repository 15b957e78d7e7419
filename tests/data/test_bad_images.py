"""Truncated JPEGs are refused by every image reader, naming the file (libjpeg alone would decode them
with a grey bottom and a warning on stderr)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from hrnet.errors import DataError
from hrnet.tasks.classification.data import read_image as read_cls_image
from hrnet.tasks.detection.data import read_image as read_det_image
from hrnet.tasks.pose.datasets import read_image as read_pose_image
from hrnet.tasks.segmentation.datasets import read_image as read_seg_image

READERS = {"pose": read_pose_image, "segmentation": read_seg_image, "detection": read_det_image,
           "classification": read_cls_image}


@pytest.fixture
def jpegs(shared_data, tmp_path) -> tuple[Path, Path]:
    source = shared_data / "coco_keypoints/val2017/000000000785.jpg"
    whole, cut = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    whole.write_bytes(source.read_bytes())
    cut.write_bytes(source.read_bytes()[: source.stat().st_size * 2 // 3])
    return whole, cut


@pytest.mark.parametrize("task", sorted(READERS))
def test_a_truncated_jpeg_stops_naming_the_file(jpegs, task):
    whole, cut = jpegs
    READERS[task](whole)
    with pytest.raises(DataError, match=rf"{cut}.* (is truncated|truncated)"):
        READERS[task](cut)


class _BrokenImages(Dataset):
    def __init__(self, path: Path) -> None:
        self.path = path

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(read_pose_image(self.path)).float().mean()


def test_an_error_raised_in_a_loader_worker_is_reported_as_its_own_one_line_message(jpegs):
    from hrnet.cli.main import error_message

    _, cut = jpegs
    with pytest.raises(DataError) as info:
        next(iter(DataLoader(_BrokenImages(cut), num_workers=1)))
    assert "Traceback" in str(info.value)  # torch wraps it in the worker's traceback
    message = error_message(info.value)
    assert message.startswith(f"image {cut} is truncated") and "\n" not in message
