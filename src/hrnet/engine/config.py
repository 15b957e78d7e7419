"""Typed experiment configs: YAML files with ``_base_`` inheritance and ``key.sub=value`` overrides.

A config is read in three steps, each easy to test alone:

1. :func:`read_yaml_tree` reads a YAML file and the files named by its ``_base_`` key (paths relative
   to the including file), deep-merging them (the including file wins; lists are replaced whole);
2. :func:`apply_overrides` sets command-line ``key.sub=value`` pairs (values parsed as YAML);
3. :func:`validate_config` checks every key and type with pydantic. The ``data:`` section (and the
   optional ``eval:``/``loss:`` extensions) are checked by the task's own models, so a pose config
   and a segmentation config are each strict about their own keys.

Every problem becomes one :class:`~hrnet.errors.ConfigError` naming the dotted key at fault, with the
closest valid key suggested for a typo.
"""

from __future__ import annotations

import importlib
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigError, did_you_mean
from ..io import read_structured, write_text

__all__ = [
    "StrictModel",
    "ModelConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "EvalConfig",
    "ExperimentConfig",
    "read_yaml_tree",
    "apply_overrides",
    "validate_config",
    "load_config",
    "config_to_dict",
    "save_config",
]


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, never silently ignored, and so are
    infinite or NaN numbers (``lr: .inf`` would poison the weights at the first step)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: model options that are sizes (``width``, ``num_classes``, ``head_channels``...): positive integers
SIZE_OPTION = re.compile(r"width|.*(blocks|channels|classes|joints|modules)")


class ModelConfig(StrictModel):
    #: preset name for ``hrnet.build_model`` (see ``hrnet.list_models()``)
    name: str
    #: keyword arguments for ``hrnet.build_model(name, **overrides)``, e.g. ``{width: 8}``
    overrides: dict[str, Any] = Field(default_factory=dict)
    #: checkpoint to initialise from before training (ImageNet backbone, official or own weights);
    #: loaded with ``hrnet.load_weights``, which reports what was used and what was skipped
    init_from: Path | None = Field(default=None, validation_alias=AliasChoices("init_from", "weights"))
    #: load only the backbone of ``init_from`` (fine-tuning to another number of joints or classes)
    init_backbone_only: bool = False

    @field_validator("overrides")
    @classmethod
    def _sizes_are_positive(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        for key, value in overrides.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            if SIZE_OPTION.fullmatch(key) and any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values if v is not None
            ):
                raise ValueError(f"{key} is a size and must be a positive integer (or a list of them), got {value!r}")
        return overrides


class OptimizerConfig(StrictModel):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.01, gt=0)
    #: SGD only
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    #: Adam/AdamW only
    betas: tuple[float, float] = (0.9, 0.999)
    #: 0 by default: the official pose recipe uses Adam without weight decay (a common reproduction trap)
    weight_decay: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _nesterov_needs_sgd_momentum(self) -> OptimizerConfig:
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("nesterov: true needs name: sgd with momentum > 0")
        return self


class ScheduleConfig(StrictModel):
    """Learning-rate factor over training; see :func:`hrnet.engine.optim.lr_factor` for the formulas."""

    name: Literal["multistep", "poly", "cosine", "constant"] = "constant"
    #: ``epoch``: the factor changes at epoch boundaries (milestones in epochs);
    #: ``iter``: it changes every iteration (milestones in iterations), as the official poly schedule
    per: Literal["epoch", "iter"] = "epoch"
    milestones: list[int] = Field(default_factory=list)
    gamma: float = Field(0.1, gt=0)
    power: float = Field(0.9, gt=0)
    #: linear warmup over the first iterations, from ``warmup_ratio`` x lr up to the scheduled lr
    warmup_iters: int = Field(0, ge=0)
    warmup_ratio: float = Field(0.1, gt=0, le=1)

    @model_validator(mode="after")
    def _milestones_sorted(self) -> ScheduleConfig:
        if self.milestones != sorted(self.milestones) or len(set(self.milestones)) != len(self.milestones):
            raise ValueError(f"milestones must be strictly increasing, got {self.milestones}")
        if self.name == "multistep" and not self.milestones:
            raise ValueError("name: multistep needs milestones")
        return self


class TrainConfig(StrictModel):
    epochs: int = Field(1, ge=1)
    #: per process: the global batch is batch_size x number of processes
    batch_size: int = Field(32, ge=1)
    workers: int = Field(2, ge=0)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    #: max global L2 norm of the gradients (None: no clipping)
    grad_clip: float | None = Field(None, gt=0)
    #: mixed precision: true picks bf16 on CPU and fp16 (with a GradScaler) on CUDA
    amp: bool | Literal["bf16", "fp16"] = False
    compile: bool = False
    channels_last: bool = False
    #: BatchNorm statistics over all processes (DDP on CUDA)
    sync_bn: bool = False
    #: validate every N epochs and after the last one (0: never)
    eval_every: int = Field(1, ge=0)
    #: keep a numbered snapshot every N epochs (0: none); ``last`` and ``best`` are always kept
    checkpoint_every: int = Field(0, ge=0)
    #: rewrite ``last`` every N iterations inside an epoch (0: only at epoch ends), so a killed run
    #: loses at most N iterations
    checkpoint_every_iters: int = Field(500, ge=0)
    log_every: int = Field(20, ge=1)
    #: cap on iterations per epoch, for smoke tests
    max_iters_per_epoch: int | None = Field(None, ge=1)


class EvalConfig(StrictModel):
    """Generic evaluation options; a task may extend it (``Task.EvalConfig``) with its own keys."""

    #: per process; None: the training batch size
    batch_size: int | None = Field(None, ge=1)
    #: None: the training worker count
    workers: int | None = Field(None, ge=0)
    flip_test: bool = True


class ExperimentConfig(StrictModel):
    task: str
    #: modules imported before the task is looked up, so a task defined outside the package
    #: (registered with ``hrnet.engine.task.register_task``) can be used
    imports: list[str] = Field(default_factory=list)
    model: ModelConfig
    #: validated by the task's ``DataConfig``
    data: Any = Field(default_factory=dict)
    #: validated by the task's ``LossConfig`` when it has one
    loss: Any = Field(default_factory=dict)
    train: TrainConfig = Field(default_factory=TrainConfig)
    #: validated by the task's ``EvalConfig`` when it has one
    eval: EvalConfig = Field(default_factory=EvalConfig)
    output_dir: Path = Path("runs/experiment")
    seed: int = Field(0, ge=0)
    #: deterministic kernels (slower on GPU); training on CPU is reproducible either way
    deterministic: bool = False
    #: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
            raise ValueError(f"expected auto, cpu, cuda, cuda:N or mps, got {value!r}")
        return value


# ----------------------------------------------------------------------------------------------- reading


def _load_yaml_file(path: Path) -> dict[str, Any]:
    data = read_structured(path, "config file", ConfigError, fmt="yaml")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, got {type(data).__name__}")
    return data


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml_tree(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML mapping in ``path`` merged over the files its ``_base_`` key names (a path or a list)."""
    path = Path(path)
    if path.resolve() in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path.resolve()))
        raise ConfigError(f"config files include each other in a cycle: {chain}")
    data = _load_yaml_file(path)
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: _base_ must be a path or a list of paths, got {bases!r}")
    merged: dict[str, Any] = {}
    for base in bases:
        base_path = path.parent / base
        if not base_path.is_file():
            raise ConfigError(f"{path}: _base_ file not found: {base_path}")
        merged = _deep_merge(merged, read_yaml_tree(base_path, (*_seen, path.resolve())))
    return _deep_merge(merged, data)


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """``raw`` with each ``key.sub=value`` applied; values are parsed as YAML (``3``, ``1e-3``, ``[1, 2]``,
    ``null``, ``true``), so types are checked by validation like those read from files."""
    result = _deep_merge({}, raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {e}") from None
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise ConfigError(f"override {item!r}: {prefix!r} is a value ({child!r}), not a section")
            else:
                child = node[part] = dict(child)
            node = child
        node[parts[-1]] = value
    return result


# ---------------------------------------------------------------------------------------------- validation


def _model_class_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model class inside ``annotation`` (``X``, ``X | None``, ``list[X]``...), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_class_in(arg)
        if found is not None:
            return found
    return None


def _valid_keys(model_cls: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Field names of the (nested) section at ``loc`` inside ``model_cls``."""
    cls: type[BaseModel] | None = model_cls
    for part in loc:
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(part) if cls else None
        cls = _model_class_in(field.annotation) if field else None
        if cls is None:
            return []
    return list(cls.model_fields)


def _describe_error(error: Mapping[str, Any], model_cls: type[BaseModel], prefix: tuple) -> str:
    loc = tuple(error["loc"])
    dotted = ".".join(str(p) for p in (*prefix, *loc)) or "<top level>"
    if error["type"] == "extra_forbidden":
        section = ".".join(str(p) for p in (*prefix, *loc[:-1]))
        where = f" in section {section!r}" if section else ""
        hint = did_you_mean(str(loc[-1]), _valid_keys(model_cls, loc[:-1]))
        return f"unknown key {dotted!r}{where}.{hint}"
    if error["type"] == "missing":
        return f"missing required key {dotted!r}."
    message = error["msg"].removeprefix("Value error, ")
    got = repr(error["input"])
    return f"{dotted}: {message} (got {got if len(got) <= 80 else got[:77] + '...'})."


def _validate_section(model_cls: type[BaseModel], raw: Any, prefix: tuple, problems: list[str]) -> BaseModel | None:
    try:
        return model_cls.model_validate(raw)
    except ValidationError as e:
        problems.extend(_describe_error(err, model_cls, prefix) for err in e.errors())
        return None


def _import_modules(names: Iterable[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            raise ConfigError(f"imports: cannot import module {name!r} ({e})") from None


def validate_config(raw: Mapping[str, Any], source: str = "config") -> ExperimentConfig:
    """Check ``raw`` against :class:`ExperimentConfig` and the task's own sections.

    All problems found are reported together in one :class:`ConfigError` mentioning ``source``.
    """
    from .task import get_task_class  # the task registry imports task modules, which may import us

    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source} must be a mapping of keys, got {type(raw).__name__}")
    problems: list[str] = []
    # ``eval`` may hold task-specific keys: it is checked below, once the task is known
    cfg = _validate_section(ExperimentConfig, {**raw, "eval": {}}, (), problems)
    if cfg is None:
        raise ConfigError(f"invalid {source}: " + " ".join(problems))

    _import_modules(cfg.imports)
    task_cls = get_task_class(cfg.task)
    data = _validate_section(task_cls.DataConfig, cfg.data, ("data",), problems)
    eval_cls = getattr(task_cls, "EvalConfig", None) or EvalConfig
    eval_cfg = _validate_section(eval_cls, raw.get("eval", {}), ("eval",), problems)
    loss_cls = getattr(task_cls, "LossConfig", None)
    if loss_cls is not None:
        loss = _validate_section(loss_cls, cfg.loss, ("loss",), problems)
    elif cfg.loss:
        problems.append(f"task {cfg.task!r} takes no 'loss' section (got {cfg.loss!r}).")
    if problems:
        raise ConfigError(f"invalid {source}: " + " ".join(problems))
    update = {"data": data, "eval": eval_cfg}
    if loss_cls is not None:
        update["loss"] = loss
    return cfg.model_copy(update=update)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read, merge, override and validate the experiment config at ``path`` (a YAML file, or the name of a
    config shipped with the package such as ``pose/coco/hrnet_w32_256x192``, see :mod:`hrnet.engine.catalog`).

    ``output_dir`` defaults to ``runs/<file stem>`` when neither the file nor the overrides set it.
    """
    from .catalog import find_config

    path = find_config(path)  # a file, or the name of a packaged config
    raw = apply_overrides(read_yaml_tree(path), overrides)
    raw.setdefault("output_dir", str(Path("runs") / path.stem))
    return validate_config(raw, source=f"config {path}")


def config_to_dict(cfg: BaseModel) -> dict[str, Any]:
    """Plain YAML/JSON-ready values (paths as strings), including the task's extension fields."""
    return cfg.model_dump(mode="json", serialize_as_any=True)


def save_config(cfg: BaseModel, path: str | Path) -> None:
    """Write the fully resolved config as YAML; ``hrnet train`` on that file reproduces the run."""
    write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
