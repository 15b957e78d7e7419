"""Image classification with HRNet-W*-C: ImageNet-style data, the official transforms, top-k accuracy."""

from ...compat import alias_modules
from .data import ClassificationDataset, eval_transforms, read_class_names, read_image, train_transforms
from .evaluation import accuracy, topk_correct
from .task import ClassificationDataConfig, ClassificationLossConfig, ClassificationTask

alias_modules({"hrnet.tasks.classification.metrics": "hrnet.tasks.classification.evaluation"})  # before 0.2

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
