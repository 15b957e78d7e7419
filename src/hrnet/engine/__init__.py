"""The task-agnostic engine: typed configs, the training loop, checkpoints, DDP, evaluation and prediction.

>>> from hrnet.engine import load_config, train
>>> summary = train(load_config("configs/pose/synthetic/quickstart.yaml"))  # doctest: +SKIP
"""

from .config import ExperimentConfig, load_config, save_config
from .inference import evaluate, predict
from .task import Task, get_task_class, register_task
from .trainer import Trainer, train

__all__ = [
    "ExperimentConfig",
    "load_config",
    "save_config",
    "Task",
    "register_task",
    "get_task_class",
    "Trainer",
    "train",
    "evaluate",
    "predict",
]
