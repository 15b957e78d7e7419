"""Calibration images for int8 quantization: a folder of representative images, preprocessed as the
model's training pipeline does (resize, RGB, normalised with the preset's mean and std)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import torch

from ..errors import ConfigError, DataError
from ..media import IMAGE_SUFFIXES, image_files, read_image

__all__ = ["calibration_batches"]


def calibration_batches(folder: str | os.PathLike, input_size: tuple[int, int], mean: Sequence[float],
                        std: Sequence[float], count: int = 64, batch_size: int = 8) -> list[torch.Tensor]:
    """Up to ``count`` images of ``folder`` (sorted, recursive), resized to ``input_size`` (H, W) and
    normalised with ``mean``/``std`` (RGB, [0, 1] units), in batches of ``batch_size``."""
    folder = Path(folder)
    files = image_files(folder, recursive=True)[:count] if folder.is_dir() else []
    if not files:
        raise ConfigError(f"calibration folder {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) found there")
    mean_t, std_t = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    images = []
    for file in files:
        try:
            rgb = read_image(file)
        except DataError as e:
            raise ConfigError(f"calibration: {e}") from None
        rgb = cv2.resize(rgb, input_size[::-1], interpolation=cv2.INTER_LINEAR)
        images.append((torch.from_numpy(rgb).permute(2, 0, 1).float() / 255 - mean_t) / std_t)
    return [torch.stack(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
