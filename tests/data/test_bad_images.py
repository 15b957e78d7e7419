"""Truncated JPEGs are refused, naming the file (libjpeg alone may decode them with a grey bottom and a
warning on stderr); an error raised in a DataLoader worker is reported as its own message."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from hrnet.errors import DataError
from hrnet.media import read_image


@pytest.fixture
def jpegs(shared_data, tmp_path) -> tuple[Path, Path]:
    source = shared_data / "coco_keypoints/val2017/000000000785.jpg"
    whole, cut = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    whole.write_bytes(source.read_bytes())
    cut.write_bytes(source.read_bytes()[: source.stat().st_size * 2 // 3])
    return whole, cut


def test_a_truncated_jpeg_stops_naming_the_file(jpegs):
    whole, cut = jpegs
    assert read_image(whole).shape[2] == 3
    with pytest.raises(DataError, match=rf"image {cut} is truncated: its JPEG data stops before the end-of-image"):
        read_image(cut)


class _BrokenImages(Dataset):
    def __init__(self, path: Path) -> None:
        self.path = path

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(read_image(self.path)).float().mean()


def test_an_error_raised_in_a_loader_worker_is_reported_as_its_own_one_line_message(jpegs):
    from hrnet.cli.main import error_message

    _, cut = jpegs
    with pytest.raises(DataError) as info:
        next(iter(DataLoader(_BrokenImages(cut), num_workers=1)))
    assert "Traceback" in str(info.value)  # torch wraps it in the worker's traceback
    message = error_message(info.value)
    assert message.startswith(f"image {cut} is truncated") and "\n" not in message
