"""Deploy paths: the forms a trained model can run in, each checked against the eager fp32 model.

=====================  =========  ==========  ===================================================
path                   precision  tolerance   what it is
=====================  =========  ==========  ===================================================
``eager``              fp32       reference   the model as trained (NCHW, BN as separate layers)
``channels_last``      fp32       1e-4        BN folded into the convs, channels_last layout
``compile``            fp32       1e-4        + ``torch.compile`` (Inductor) with freezing
``compile_bf16``       bf16       1e-1        + weights and activations in bfloat16 (CPU)
``onnxruntime``        fp32       1e-4        BN-folded ONNX graph run by ONNX Runtime
``onnxruntime_int8``   int8       2.5e-1      + static int8 quantization (calibrated, per-channel)
``cuda_amp``           fp16       5e-2        CUDA: BN folded, channels_last, fp16 autocast
``cuda_compile_fp16``  fp16       5e-2        CUDA: compiled with freezing, fp16
``cuda_graphs_fp16``   fp16       5e-2        CUDA: compiled, fp16, replayed as one CUDA graph
=====================  =========  ==========  ===================================================

Tolerance: ``max |path - eager| <= tolerance * max(1, max |eager|)`` on the same input (see
:class:`~hrnet.deploy.parity.Parity`). Reduced-precision paths are judged by task accuracy on
trained weights (``docs/performance.md``); their tolerance only catches broken conversions.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError, did_you_mean
from .compile import cache_root, compile_for_inference, eager_runner
from .onnx import CALIBRATION_GROUP, OnnxRunner, export_onnx, quantize_onnx
from .parity import Parity, compare_outputs

__all__ = ["DeployPath", "DeployedModel", "PATHS", "list_paths", "get_path", "deploy", "example_input",
           "model_fingerprint"]

Runner = Callable[[Tensor], Any]


@dataclass(frozen=True)
class BuildInputs:
    """What a path builder gets: the model, one example batch, calibration batches, a cache folder."""

    model: nn.Module
    example: Tensor
    calibration: Sequence[Tensor]
    artifacts: Path


@dataclass(frozen=True)
class DeployPath:
    name: str
    precision: str
    tolerance: float
    device: str
    summary: str
    build: Callable[[BuildInputs], Runner]
    needs: tuple[str, ...] = ()

    def available(self) -> bool:
        """Whether this machine can run the path (its device and Python packages exist)."""
        if self.device == "cuda" and not torch.cuda.is_available():
            return False
        return all(importlib.util.find_spec(module) is not None for module in self.needs)


def _eager(inputs: BuildInputs) -> Runner:
    model = copy.deepcopy(inputs.model).to(inputs.example.device).eval()

    def run(images: Tensor) -> Any:
        with torch.inference_mode():
            return model(images.float())

    return run


def _onnx_file(inputs: BuildInputs) -> Path:
    path = inputs.artifacts / f"{model_fingerprint(inputs.model, inputs.example)}.onnx"
    if not path.is_file():
        export_onnx(inputs.model, path, inputs.example)
    return path


def _onnx(inputs: BuildInputs) -> Runner:
    return OnnxRunner(_onnx_file(inputs))


def _onnx_int8(inputs: BuildInputs) -> Runner:
    source = _onnx_file(inputs)
    digest = hashlib.sha256(f"calibration group {CALIBRATION_GROUP}, moving-average ranges".encode())
    for batch in inputs.calibration:
        digest.update(batch.detach().float().cpu().contiguous().numpy().tobytes())
    path = source.with_name(f"{source.stem}.int8-{digest.hexdigest()[:12]}.onnx")
    if not path.is_file():
        quantize_onnx(source, path, inputs.calibration)
    return OnnxRunner(path)


PATHS: dict[str, DeployPath] = {p.name: p for p in [
    DeployPath("eager", "fp32", 0.0, "cpu", "the model as trained: NCHW, BN as separate layers", _eager),
    DeployPath("channels_last", "fp32", 1e-4, "cpu", "BN folded into the convs, channels_last layout",
               lambda i: eager_runner(i.model, i.example)),
    DeployPath("compile", "fp32", 1e-4, "cpu", "BN folded, channels_last, torch.compile with freezing",
               lambda i: compile_for_inference(i.model, i.example)),
    DeployPath("compile_bf16", "bf16", 1e-1, "cpu", "compile path with bf16 weights and activations",
               lambda i: compile_for_inference(i.model, i.example, torch.bfloat16)),
    DeployPath("onnxruntime", "fp32", 1e-4, "cpu", "BN-folded ONNX graph run by ONNX Runtime", _onnx,
               needs=("onnx", "onnxscript", "onnxruntime")),
    DeployPath("onnxruntime_int8", "int8", 2.5e-1, "cpu",
               "ONNX Runtime, int8 static quantization (per-channel weights, calibrated activations)",
               _onnx_int8, needs=("onnx", "onnxscript", "onnxruntime")),
    DeployPath("cuda_eager", "fp32", 0.0, "cuda", "the model as trained, on the GPU", _eager),
    DeployPath("cuda_amp", "fp16", 5e-2, "cuda", "BN folded, channels_last, fp16 autocast",
               lambda i: eager_runner(i.model, i.example, autocast=torch.float16)),
    DeployPath("cuda_compile_fp16", "fp16", 5e-2, "cuda", "BN folded, channels_last, compiled, fp16",
               lambda i: compile_for_inference(i.model, i.example, torch.float16)),
    DeployPath("cuda_graphs_fp16", "fp16", 5e-2, "cuda", "compiled fp16 forward replayed as one CUDA graph",
               lambda i: compile_for_inference(i.model, i.example, torch.float16, cuda_graphs=True)),
]}
#: the eager fp32 reference of each device, against which the other paths are compared
REFERENCE = {"cpu": "eager", "cuda": "cuda_eager"}


def list_paths(device: str | None = None, available_only: bool = True) -> list[str]:
    """Path names, optionally only those for ``device`` and those this machine can run."""
    return [name for name, p in PATHS.items()
            if (device is None or p.device == device) and (p.available() or not available_only)]


def get_path(name: str) -> DeployPath:
    if name not in PATHS:
        raise ConfigError(f"unknown deploy path {name!r}.{did_you_mean(name, PATHS)} Known: {', '.join(PATHS)}.")
    path = PATHS[name]
    if not path.available():
        need = "a CUDA GPU" if path.device == "cuda" else f"the packages {', '.join(path.needs)}"
        raise ConfigError(f"deploy path {name!r} needs {need}, which this machine lacks")
    return path


def example_input(model: nn.Module, input_size: tuple[int, int] | None = None, batch: int = 1,
                  device: str | torch.device = "cpu", seed: int = 0) -> Tensor:
    """A reproducible random image batch; ``input_size`` defaults to the model preset's
    (``model.pretrained_cfg``)."""
    if input_size is None:
        pretrained_cfg = getattr(model, "pretrained_cfg", None)
        if pretrained_cfg is None:
            raise ConfigError("input_size is needed for a model not built from a preset, e.g. input_size=(256, 192)")
        input_size = pretrained_cfg["input_size"]
    channels = getattr(getattr(model, "cfg", None), "in_channels", 3)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, *input_size, generator=generator).to(device)


def model_fingerprint(model: nn.Module, example: Tensor) -> str:
    """A short hash of the architecture, weights and input shape: the key of cached artifacts."""
    digest = hashlib.sha256(f"{torch.__version__}|{model}|{tuple(example.shape[1:])}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class DeployedModel:
    """A model in one deploy path: ``deployed(images)`` returns what the eager model returns, in fp32.

    Inference only (no gradients); inputs are moved to the path's device.
    """

    def __init__(self, path: DeployPath, runner: Runner, device: torch.device) -> None:
        self.path, self.runner, self.device = path, runner, device

    def __call__(self, images: Tensor) -> Any:
        return self.runner(images.to(self.device))

    def check(self, model: nn.Module, images: Tensor) -> Parity:
        """Parity of this path with ``model`` run eagerly in fp32 on ``images``."""
        reference = PATHS[REFERENCE[self.path.device]].build(
            BuildInputs(model, images.to(self.device), (), Path()))
        return compare_outputs(reference(images.to(self.device)), self(images), self.path.tolerance)

    def __repr__(self) -> str:
        return f"DeployedModel(path={self.path.name!r}, precision={self.path.precision!r}, device={self.device})"


def deploy(model: nn.Module, path: str = "compile", input_size: tuple[int, int] | None = None,
           example: Tensor | None = None, calibration: Sequence[Tensor] | None = None,
           artifacts: str | Path | None = None) -> DeployedModel:
    """Turn ``model`` into its ``path`` form (see the table above); ``model`` itself is not changed.

    ``example`` (or a random batch of ``input_size``, default the preset's) is what the graph is
    traced and compiled with; other batch sizes work. ``calibration`` is a sequence of image batches
    for int8 (default: 8 random images, which measures speed but not accuracy). ONNX files go to
    ``artifacts`` (default ``~/.cache/hrnet/onnx``), keyed by a hash of the weights, and are reused.
    """
    spec = get_path(path)
    device = torch.device(spec.device)
    if example is None:
        example = example_input(model, input_size)
    if spec.precision == "int8" and calibration is None:
        warnings.warn("int8 quantization calibrated on random images: fine for timing, not for accuracy; "
                      "pass calibration=[real image batches]", stacklevel=2)
        calibration = [example_input(model, tuple(example.shape[-2:]), batch=8, seed=1)]
    inputs = BuildInputs(model, example.to(device), tuple(calibration or ()),
                         Path(artifacts) if artifacts else cache_root() / "onnx")
    return DeployedModel(spec, spec.build(inputs), device)
