"""The contract between the task-agnostic engine and each task (pose, segmentation, detection, cls).

The engine owns the loop (optimizer, schedule, AMP, DDP, checkpoints, logging); a task owns what is
specific to it: its data config, datasets, loss and evaluation. A task registers itself with
:func:`register_task` so that a config's ``task: pose`` finds it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..errors import ConfigError, did_you_mean

TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    TASKS[cls.name] = cls
    return cls


BUILTIN_TASKS = ("pose", "segmentation", "detection", "classification")
#: built-in tasks registered by another task's package (bottom-up pose lives with pose)
TASK_PACKAGES = {"pose_bottomup": "pose"}


def get_task_class(name: str) -> type[Task]:
    if name not in TASKS and (name in BUILTIN_TASKS or name in TASK_PACKAGES):
        _import_builtin_tasks([TASK_PACKAGES.get(name, name)])  # only the one asked for: the others' imports are slow
    if name not in TASKS:
        _import_builtin_tasks(BUILTIN_TASKS)
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}.{did_you_mean(name, TASKS)}")
    return TASKS[name]


def _import_builtin_tasks(modules: tuple[str, ...] | list[str]) -> None:
    import importlib

    for module in modules:
        try:
            importlib.import_module(f"hrnet.tasks.{module}.task")
        except ModuleNotFoundError as e:  # a task not built yet
            if not (e.name or "").startswith("hrnet.tasks"):
                raise


class Task(ABC):
    """One task. ``cfg`` is the validated experiment config (``hrnet.engine.config.ExperimentConfig``);
    ``cfg.data`` has already been validated with the task's ``DataConfig``."""

    name: ClassVar[str]
    #: pydantic model validating the ``data:`` section of a config for this task
    DataConfig: ClassVar[type[BaseModel]]
    #: metric used for best-checkpoint selection (higher is better), e.g. ``"AP"`` or ``"mIoU"``
    main_metric: ClassVar[str]
    #: optional pydantic model for the ``eval:`` section, a subclass of ``hrnet.engine.config.EvalConfig``
    #: adding the task's own keys; ``None`` keeps the generic one
    EvalConfig: ClassVar[type[BaseModel] | None] = None
    #: optional pydantic model for a ``loss:`` section; ``None`` means the task takes none
    LossConfig: ClassVar[type[BaseModel] | None] = None

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        #: the validated ``data:``, ``eval:`` and ``loss:`` sections (``loss_cfg`` is None without LossConfig)
        self.data: Any = self.section("data")
        self.eval_cfg: Any = self.section("eval")
        self.loss_cfg: Any = self.section("loss")

    def section(self, name: str) -> BaseModel | None:
        """The ``data``, ``eval`` or ``loss`` section of ``cfg`` as the task's model of it: as validated by
        ``validate_config``, or validated here from a plain mapping (a config assembled in code)."""
        from .config import EvalConfig  # the config module imports this one

        cls = {"data": self.DataConfig, "eval": self.EvalConfig or EvalConfig, "loss": self.LossConfig}[name]
        if cls is None:
            return None
        value = getattr(self.cfg, name, None)
        return value if isinstance(value, cls) else cls.model_validate(value or {})

    @abstractmethod
    def build_model(self) -> nn.Module:
        """The model of ``cfg.model`` (preset name + overrides)."""

    @abstractmethod
    def build_dataset(self, split: str) -> Dataset:
        """``split`` is ``"train"`` or ``"val"``; raises ``DataError`` naming a missing path."""

    def collate_fn(self) -> Callable | None:
        """Batch collation; ``None`` means torch's default."""
        return None

    @abstractmethod
    def compute_loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        """Forward a training batch; return the scalar loss and extra numbers to log.

        The engine has already moved every tensor in ``batch`` to the model's device (see
        ``hrnet.engine.data.move_to_device``) and runs this under autocast when AMP is on."""

    @abstractmethod
    def evaluate(self, model: nn.Module, loader: torch.utils.data.DataLoader, out_dir: Path) -> dict[str, float]:
        """Run inference over ``loader`` (this rank's share), write predictions under ``out_dir`` on rank 0,
        and return metrics including ``main_metric``. Under DDP the task gathers what it needs
        (``hrnet.engine.distributed.all_gather_object``). The engine (``run_evaluation``) has put ``model``
        in eval mode with gradients off and moves every batch to the model's device; ``loader.dataset``
        is the dataset. Tasks neither move data nor toggle modes themselves."""

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list[Path]:
        """Run on user files (images, folders, videos); write outputs under ``out_dir`` and return them.
        The engine has put ``model`` in eval mode with gradients off; the task reads the files and puts
        their tensors on the model's device."""
        raise NotImplementedError(f"task {self.name!r} has no predict yet")
