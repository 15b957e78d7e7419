"""Semantic segmentation with HRNetV2 and HRNetV2+OCR, faithful to the official HRNet code.

Importing the task module registers ``task: segmentation`` with the engine. The single-pass
``inference`` function lives in :mod:`hrnet.tasks.segmentation.inference` (not re-exported here, so that
the module name stays importable as a module).
"""

from ...compat import alias_modules
from .classes import CITYSCAPES_CLASS_WEIGHTS, LIP_FLIP_PAIRS
from .data import (
    ADE20KDataset,
    CityscapesDataset,
    FolderDataset,
    LIPDataset,
    PascalContextDataset,
    SegmentationDataset,
)
from .evaluation import confusion_matrix, reduce_confusion_matrix, segmentation_metrics
from .inference import multi_scale_inference, predict_scores, sliding_window_inference
from .loss import CrossEntropyLoss, OhemCrossEntropyLoss, SegmentationLoss, build_loss
from .task import SegmentationTask

alias_modules({  # the modules' names before 0.2
    "hrnet.tasks.segmentation.datasets": "hrnet.tasks.segmentation.data",
    "hrnet.tasks.segmentation.losses": "hrnet.tasks.segmentation.loss",
    "hrnet.tasks.segmentation.metrics": "hrnet.tasks.segmentation.evaluation",
})

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
