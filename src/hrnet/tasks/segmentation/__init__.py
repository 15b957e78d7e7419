"""Semantic segmentation with HRNetV2 and HRNetV2+OCR, faithful to the official HRNet code.

Importing the task module registers ``task: segmentation`` with the engine. The single-pass
``inference`` function lives in :mod:`hrnet.tasks.segmentation.inference` (not re-exported here, so that
the module name stays importable as a module).
"""

from .classes import CITYSCAPES_CLASS_WEIGHTS, LIP_FLIP_PAIRS
from .datasets import (
    ADE20KDataset,
    CityscapesDataset,
    FolderDataset,
    LIPDataset,
    PascalContextDataset,
    SegmentationDataset,
)
from .inference import multi_scale_inference, predict_scores, sliding_window_inference
from .losses import CrossEntropyLoss, OhemCrossEntropyLoss, SegmentationLoss, build_loss
from .metrics import confusion_matrix, reduce_confusion_matrix, segmentation_metrics
from .task import SegmentationTask

__all__ = [
    "CITYSCAPES_CLASS_WEIGHTS",
    "LIP_FLIP_PAIRS",
    "SegmentationDataset",
    "CityscapesDataset",
    "LIPDataset",
    "PascalContextDataset",
    "ADE20KDataset",
    "FolderDataset",
    "sliding_window_inference",
    "multi_scale_inference",
    "predict_scores",
    "CrossEntropyLoss",
    "OhemCrossEntropyLoss",
    "SegmentationLoss",
    "build_loss",
    "confusion_matrix",
    "segmentation_metrics",
    "reduce_confusion_matrix",
    "SegmentationTask",
]
