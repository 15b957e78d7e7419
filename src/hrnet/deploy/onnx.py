"""ONNX export (dynamic batch), an ONNX Runtime runner, and int8 static quantization for ORT.

The exported graph is the BN-folded model (so the quantizer sees the weights that actually run),
traced with ``torch.export`` (``torch.onnx.export(dynamo=True)``) at opset 18 with a symbolic batch
dimension. The file carries its output structure in the ONNX metadata, so :class:`OnnxRunner`
returns what the PyTorch model returns: a tensor (pose, seg, cls), a list (OCR ``[aux, logits]``)
or a dict (HRNetV2p pyramid levels).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError, HRNetError
from ..io import atomic_write
from .fold import fold_batchnorm
from .parity import flatten_outputs

__all__ = ["DEFAULT_OPSET", "export_onnx", "export_detector_onnx", "is_detector", "OnnxRunner", "quantize_onnx",
           "output_structure", "CALIBRATION_GROUP"]

DEFAULT_OPSET = 18
STRUCTURE_KEY = "hrnet.outputs"


def _require(module: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise HRNetError(f"{purpose} needs the {module!r} package: pip install 'hrnet[onnx]'") from e


def output_structure(outputs: Any) -> dict[str, Any]:
    """``{"kind": "tensor" | "list" | "dict", "names": [...]}`` describing a model output."""
    if isinstance(outputs, Tensor):
        return {"kind": "tensor", "names": ["output"]}
    if isinstance(outputs, dict):
        return {"kind": "dict", "names": [str(key) for key in outputs]}
    return {"kind": "list", "names": [f"output{i}" for i in range(len(flatten_outputs(outputs)))]}


def export_onnx(model: nn.Module, path: str | os.PathLike, example: Tensor, opset: int = DEFAULT_OPSET,
                fold: bool = True, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` (eval mode, BN folded unless ``fold=False``) as ONNX with a dynamic batch axis.

    ``example`` fixes the channel count and image size (H, W stay static: HRNet's nearest-neighbour
    fusion needs them known); any batch size runs. ``metadata`` is stored in the file's
    ``metadata_props`` (e.g. the preset name and input size).
    """
    onnx = _require("onnx", "ONNX export")
    _require("onnxscript", "ONNX export")
    if opset < 17:
        raise ConfigError(f"opset={opset}: ONNX export needs opset 17 or newer")
    model = fold_batchnorm(model, example) if fold else model.eval()
    # batch 2: a batch-1 example would let the tracer specialise the batch axis to 1
    example = example[:1].expand(2, *example.shape[1:]).contiguous().float()
    with torch.no_grad():
        structure = output_structure(model(example))
    batch = torch.export.Dim("batch", min=1, max=4096)
    with tempfile.TemporaryDirectory() as tmp:
        program = torch.onnx.export(
            model, (example,), dynamo=True, opset_version=opset, dynamic_shapes=({0: batch},),
            input_names=["images"], output_names=structure["names"], external_data=False, verbose=False)
        program.save(Path(tmp) / "model.onnx")
        proto = onnx.load(Path(tmp) / "model.onnx")
    return _write_with_metadata(proto, path, {STRUCTURE_KEY: json.dumps(structure), **(metadata or {})})


def is_detector(model: nn.Module) -> bool:
    """Whether ``model`` is a detector: torchvision's Faster/Mask R-CNN, RetinaNet, FCOS, or any model that
    ``hrnet.tasks.detection.build_detector`` made (they carry ``arch`` and ``num_categories``, e.g. CenterNet)."""
    from torchvision.models.detection import FCOS, RetinaNet
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

    built_by_hrnet = hasattr(model, "arch") and hasattr(model, "num_categories")
    return built_by_hrnet or isinstance(model, GeneralizedRCNN | RetinaNet | FCOS)


def export_detector_onnx(model: nn.Module, path: str | os.PathLike, image_size: tuple[int, int],
                         opset: int = 17, metadata: dict[str, str] | None = None) -> Path:
    """Write a detector as ONNX: one ``(3, H, W)`` image in (any H, W), its detections out.

    torchvision supports ONNX for its detectors through the TorchScript-based exporter only (their
    post-processing has data-dependent shapes), so this uses ``dynamo=False``. The graph includes
    the detector's own resizing and normalisation, and runs one image per call.
    """
    onnx = _require("onnx", "ONNX export")
    model = model.eval()
    image = torch.rand(3, *image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        names = list(model([image])[0])
    structure = {"kind": "detections", "names": names}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # the tracer's notes on torchvision's (and the input checks') Python-side shape logic, and the
        # notice that this exporter is the legacy one: both expected here
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", "To copy construct from a tensor", UserWarning)
        torch.onnx.export(model, ([image],), Path(tmp) / "model.onnx", dynamo=False, opset_version=opset,
                          input_names=["image"], output_names=names, verbose=False,
                          dynamic_axes={"image": {1: "height", 2: "width"}})
        proto = onnx.load(Path(tmp) / "model.onnx")
    return _write_with_metadata(proto, path, {STRUCTURE_KEY: json.dumps(structure), **(metadata or {})})


def _write_with_metadata(proto: Any, path: str | os.PathLike, metadata: dict[str, str]) -> Path:
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    path = Path(path)
    with atomic_write(path) as f:
        f.write(proto.SerializeToString())
    return path


class OnnxRunner:
    """Runs an exported HRNet with ONNX Runtime: ``runner(images)`` -> the PyTorch model's outputs.

    ``threads`` defaults to ``torch.get_num_threads()`` so both runtimes get the same cores. The session's
    threads sleep when idle instead of spinning (``spin=False``): with several sessions (a pose model and
    a person detector) or PyTorch in one process, spinning threads take the cores the next session needs
    (measured on 2 cores: the detector 104 -> 68 ms per frame after a pose batch, the pose model 28.2 ->
    23.5 ms per crop after the detector).
    Inputs are any float tensor (NCHW or channels_last); outputs are CPU tensors. A detector takes a
    list of ``(3, H, W)`` images, as torchvision's, and returns one dict of detections per image.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None,
                 providers: list[str] | None = None, spin: bool = False) -> None:
        ort = _require("onnxruntime", "the ONNX Runtime path")
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"ONNX file not found: {self.path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own untyped errors for corrupt or unsupported files
            raise HRNetError(f"ONNX Runtime cannot load {self.path}: {e}") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        self.structure = json.loads(meta.get(STRUCTURE_KEY, '{"kind": "list"}'))
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _run(self, images: Tensor) -> list[Tensor]:
        array = images.detach().float().cpu().contiguous().numpy()
        return [torch.from_numpy(a) for a in self.session.run(self.output_names, {self.input_name: array})]

    def __call__(self, images: Tensor | list[Tensor]) -> Any:
        if self.structure["kind"] == "detections":
            return [dict(zip(self.output_names, self._run(image), strict=True)) for image in images]
        tensors = self._run(images)
        if self.structure["kind"] == "tensor":
            return tensors[0]
        if self.structure["kind"] == "dict":
            return OrderedDict(zip(self.output_names, tensors, strict=True))
        return tensors


#: Calibration images per range estimate. An activation's int8 range is the mean, over groups of this many
#: images, of each group's min and max (ONNX Runtime's moving-average calibration; PyTorch's
#: moving-average min/max observer estimates likewise): a global min/max follows the rarest extreme
#: activation and spreads the 256 levels over a range the typical image never uses. On the trained
#: synthetic-pose W32 this took the int8 AP drop from 1.21 to 0.07 points (benchmarks/RESULTS.md).
CALIBRATION_GROUP = 16


def _calibration_images(batches: Iterable[Tensor]) -> Tensor:
    """All calibration images in one float CPU tensor, so they can be regrouped; none is an error."""
    batches = [batch.detach().float().cpu() for batch in batches]
    if not sum(len(batch) for batch in batches):
        raise ConfigError("int8 quantization needs calibration images; none were given")
    return torch.cat(batches)


class _Batches:
    """ONNX Runtime's calibration-reader protocol: the calibration images in groups of ``group``, so that
    the range estimate does not depend on how the caller batched them."""

    def __init__(self, input_name: str, images: Tensor, group: int = CALIBRATION_GROUP) -> None:
        self.input_name = input_name
        self.iterator = iter(images.split(group))

    def get_next(self) -> dict[str, Any] | None:
        batch = next(self.iterator, None)
        return None if batch is None else {self.input_name: batch.contiguous().numpy()}


def quantize_onnx(source: str | os.PathLike, path: str | os.PathLike, calibration: Iterable[Tensor],
                  exclude_last: bool = True) -> Path:
    """Int8 static quantization of an exported model for ONNX Runtime (x86: VNNI kernels).

    Weights are int8 per output channel, activations uint8 with ranges estimated on the ``calibration``
    batches as :data:`CALIBRATION_GROUP` says (use a few hundred real training images for trained
    weights). The final layer stays fp32 (``exclude_last``): it maps features to heatmaps or logits,
    where an 8-bit output grid would cost accuracy for a negligible speed-up.
    """
    onnx = _require("onnx", "int8 quantization")
    quantization = _require("onnxruntime.quantization", "int8 quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source, path = Path(source), Path(path)
    images = _calibration_images(calibration)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(prepared).graph
        layers = [n.name for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
        excluded = layers[-1:] if exclude_last else []
        quantized = Path(tmp) / "quantized.onnx"
        quantization.quantize_static(
            str(prepared), str(quantized), _Batches(graph.input[0].name, images),
            quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
            nodes_to_exclude=excluded, extra_options={"ActivationSymmetric": False, "CalibMovingAverage": True})
        proto = onnx.load(quantized)
    kept = {p.key for p in proto.metadata_props}
    for entry in onnx.load(source, load_external_data=False).metadata_props:
        if entry.key not in kept:
            proto.metadata_props.add().CopyFrom(entry)
    with atomic_write(path) as f:
        f.write(proto.SerializeToString())
    return path
