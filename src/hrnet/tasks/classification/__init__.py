"""Image classification with HRNet-W*-C: ImageNet-style data, the official transforms, top-k accuracy."""

from .data import ClassificationDataset, eval_transforms, read_class_names, read_image, train_transforms
from .metrics import accuracy, topk_correct
from .task import ClassificationDataConfig, ClassificationLossConfig, ClassificationTask

__all__ = [
    "ClassificationDataset",
    "ClassificationDataConfig",
    "ClassificationLossConfig",
    "ClassificationTask",
    "accuracy",
    "topk_correct",
    "train_transforms",
    "eval_transforms",
    "read_image",
    "read_class_names",
]
