"""Synthetic datasets in the real formats (COCO keypoints, segmentation folders, COCO detection,
ImageNet folders): :func:`synthesize` writes one, deterministically; see ``docs/synthetic_data.md``."""

from .generate import synthesize

__all__ = ["synthesize"]
