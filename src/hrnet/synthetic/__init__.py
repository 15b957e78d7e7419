"""Synthetic datasets in the real formats (COCO keypoints, segmentation folders, COCO detection,
ImageNet folders): :func:`synthesize` writes one, deterministically; see ``docs/synthetic_data.md``.
:func:`moving_people` makes a video of walking, crossing persons with the truth of every frame."""

from .generate import synthesize
from .video import SyntheticVideo, moving_people

__all__ = ["synthesize", "moving_people", "SyntheticVideo"]
