"""A task's model in one of :mod:`hrnet.deploy`'s paths, behind the ``nn.Module`` face the tasks call.

Only the network's forward (backbone + head, or a detector's backbone) is deployed; the tasks' pre- and
post-processing stays in Python and is the same code for every path. :class:`DeployedModule` deploys the
forward once per input shape (ONNX graphs have static image sizes; compiled graphs are specialised to
theirs) and forwards any attribute the tasks read (``cfg``, ``num_classes``...) to the original model,
so ``task.evaluate(model, ...)`` and the predictors run unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..deploy.paths import PATHS, DeployedModel, deploy
from ..engine.task import Task
from ..errors import ConfigError, DataError, did_you_mean

__all__ = ["DeployedModule", "deploy_task_model", "training_calibration", "check_path", "DETECTOR_PATHS",
           "OnnxDetector", "deploy_person_detector"]

#: ``shape (C, H, W) -> calibration batches`` of that shape
Calibration = Callable[[tuple[int, ...]], Sequence[Tensor]]


def check_path(path: str, device: str | torch.device = "cpu") -> None:
    """Refuse an unknown path (close names suggested), one this machine cannot run (naming the missing
    package or device), and one for another device than ``device``."""
    if path not in PATHS:
        raise ConfigError(f"unknown inference path {path!r}.{did_you_mean(path, PATHS)} "
                          f"Known: {', '.join(PATHS)}.")
    spec = PATHS[path]
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"path {path!r} runs on a CUDA GPU, which this machine lacks (torch.cuda.is_available() "
                          "is False); CPU paths: " + ", ".join(n for n, p in PATHS.items() if p.device == "cpu"))
    missing = [module for module in spec.needs if not _importable(module)]
    if missing:
        raise ConfigError(f"path {path!r} needs the Python package(s) {', '.join(missing)}, not installed here: "
                          f"pip install {' '.join(missing)} (or pip install 'hrnet[onnx]')")
    if path != "eager" and torch.device(device).type != spec.device:  # eager: the model as it is, anywhere
        raise ConfigError(f"path {path!r} runs on {spec.device}, but device={str(device)!r}; use device="
                          f"{spec.device!r} or a path for {torch.device(device).type}")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class DeployedModule(nn.Module):
    """``module(images)`` runs ``model``'s forward in deploy path ``path``, deployed on first use of each
    input shape (``(C, H, W)``; any batch size). ``calibration(shape)`` gives int8's image batches."""

    def __init__(self, model: nn.Module, path: str, calibration: Calibration | None = None,
                 artifacts: str | Path | None = None) -> None:
        super().__init__()
        check_path(path, next(model.parameters()).device)
        object.__setattr__(self, "source", model.eval())  # not a submodule: its weights are not ours
        self.path, self.calibration, self.artifacts = path, calibration, artifacts
        self.deployed: dict[tuple[int, ...], DeployedModel] = {}
        # a parameter so that ``next(module.parameters()).device`` names the device it runs on
        self.anchor = nn.Parameter(torch.zeros(0, device=next(model.parameters()).device), requires_grad=False)

    def forward(self, images: Tensor) -> Any:
        shape = tuple(images.shape[1:])
        if shape not in self.deployed:
            calibration = self.calibration(shape) if self.calibration is not None else None
            self.deployed[shape] = deploy(self.source, self.path, example=images[:1].detach().float(),
                                          calibration=calibration, artifacts=self.artifacts)
        return self.deployed[shape](images)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["source"], name)

    def extra_repr(self) -> str:
        return f"path={self.path!r}, shapes={list(self.deployed)}"


def deploy_task_model(task: Task, model: nn.Module, path: str, calibration_images: int = 64,
                      artifacts: str | Path | None = None) -> nn.Module:
    """``model`` (a model of ``task``) with its network forward in ``path``: the model itself for
    ``eager``; for a detector, a copy whose backbone is deployed. int8 calibrates on
    ``calibration_images`` images of the config's train split, preprocessed as for training."""
    check_path(path, next(model.parameters()).device)
    if path == "eager":
        return model
    int8 = PATHS[path].precision == "int8"
    if task.name == "detection":
        if int8:
            raise ConfigError(f"path {path!r}: int8 calibration of a detector's backbone is not supported; "
                              "use onnxruntime, compile or compile_bf16")
        if not isinstance(getattr(model, "backbone", None), nn.Module):
            raise ConfigError(f"path {path!r}: this detector has no 'backbone' module to deploy; use path='eager'")
        deployed = copy.copy(model)  # shares every submodule but the backbone
        deployed._modules = dict(model._modules)
        deployed.backbone = DeployedModule(model.backbone, path, None, artifacts)
        return deployed
    calibration = training_calibration(task, calibration_images) if int8 else None
    return DeployedModule(model, path, calibration, artifacts)


def training_calibration(task: Task, count: int = 64, batch_size: int = 8) -> Calibration:
    """``shape -> batches``: the network inputs of ``count`` train-split samples spread over the split (drawn
    with a fixed seed, so the int8 model, cached by its calibration data, is reused), resized to ``shape``.
    The samples are read here, so a missing train split is reported before any prediction."""
    inputs = _training_inputs(task, count)

    def batches(shape: tuple[int, ...]) -> list[Tensor]:
        images = [F.interpolate(x[None], size=shape[-2:], mode="bilinear", align_corners=False)[0]
                  if tuple(x.shape) != shape else x for x in inputs]
        return [torch.stack(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]

    return batches


def _training_inputs(task: Task, count: int) -> list[Tensor]:
    try:
        dataset = task.build_dataset("train")
    except DataError as e:
        raise ConfigError(f"int8 calibration reads the config's train split, which cannot be read: {e}") from None
    if len(dataset) == 0:
        raise ConfigError("int8 calibration: the config's train split has no samples")
    picks = np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().astype(int)
    with _seeded(0):
        items = [dataset[int(i)] for i in picks]
    images = [item["image"] if isinstance(item, dict) else item[0] for item in items]
    return [image.float() for image in images]


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Python's, NumPy's and torch's random generators seeded, their states restored afterwards."""
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


#: how a person detector can run: ``eager`` (the PyTorch model) or ``onnxruntime`` (exported, fp32)
DETECTOR_PATHS = ("eager", "onnxruntime")


class OnnxDetector:
    """A detection model run by ONNX Runtime behind torchvision's detector interface (a list of float CPU
    images in, one ``{boxes, labels, scores}`` per image out). The exported graph includes the model's
    resizing and normalisation, whose sizes the exporter records as constants, so the model is exported
    once per image size, on the first image of that size (the frames of a video: once)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = copy.deepcopy(model).cpu().eval()
        self.runners: dict[tuple[int, int], Any] = {}

    def _runner(self, size: tuple[int, int]) -> Any:
        import tempfile

        from ..deploy.onnx import OnnxRunner, export_detector_onnx

        if size not in self.runners:
            with tempfile.TemporaryDirectory(prefix="hrnet-detector-") as tmp:
                try:
                    file = export_detector_onnx(self.model, Path(tmp) / "detector.onnx", size)
                except Exception as e:  # the exporter's own errors, from deep inside the tracer
                    raise ConfigError(f"the person detector ({type(self.model).__name__}) cannot be exported to "
                                      f"ONNX: {e}; use the eager detector path") from e
                self.runners[size] = OnnxRunner(file)  # loaded into memory: the file can go
        return self.runners[size]

    def __call__(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        return [self._runner(tuple(image.shape[-2:]))([image])[0] for image in images]


def deploy_person_detector(detector: Any, path: str = "eager") -> Any:
    """A :class:`~hrnet.tasks.detection.person.PersonDetector` run in ``path`` (:data:`DETECTOR_PATHS`).

    ``onnxruntime`` runs the detector in fp32 with ONNX Runtime (:class:`OnnxDetector`): the same persons
    within float rounding, about twice as fast as eager PyTorch on a CPU for torchvision's mobile
    detectors. Detectors stay fp32 in every path (their boxes decide every pose).
    """
    from ..tasks.detection.person import PersonDetector

    if path not in DETECTOR_PATHS:
        raise ConfigError(f"unknown detector path {path!r}.{did_you_mean(path, DETECTOR_PATHS)} "
                          f"Known: {', '.join(DETECTOR_PATHS)}.")
    if path == "eager":
        return detector
    if not isinstance(detector, PersonDetector) or not isinstance(detector.model, nn.Module):
        raise ConfigError(f"detector path {path!r} exports a detection model: give a detector built from a "
                          "name or config, not a function")
    check_path(path)
    return PersonDetector(OnnxDetector(detector.model), detector.person_label, detector.score_threshold,
                          detector.max_persons)
