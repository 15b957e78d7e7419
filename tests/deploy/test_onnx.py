"""ONNX export parity: pose, seg, cls (<= 1e-4 x output scale), any batch size, output structure kept."""

from collections import OrderedDict

import pytest
import torch
from conftest import SIZE, make_tiny

from hrnet.deploy import OnnxRunner, compare_outputs, export_onnx, quantize_onnx
from hrnet.errors import ConfigError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each family exported once: {name: (model, onnx path)}."""
    out = tmp_path_factory.mktemp("onnx")
    models = {}
    for name in ["pose_hrnet_w32", "seg_hrnetv2_w18", "cls_hrnet_w18", "hrnetv2p_w18"]:
        model = make_tiny(name).eval()
        models[name] = model, export_onnx(model, out / f"{name}.onnx", torch.randn(1, 3, *SIZE))
    return models


@pytest.mark.parametrize("name", ["pose_hrnet_w32", "seg_hrnetv2_w18", "cls_hrnet_w18"])
def test_onnx_runtime_matches_pytorch_at_any_batch(exported, name):
    model, path = exported[name]
    runner = OnnxRunner(path)
    for batch in (1, 3):
        x = torch.randn(batch, 3, *SIZE)
        with torch.no_grad():
            reference = model(x)
        outputs = runner(x)
        assert outputs.shape == reference.shape
        parity = compare_outputs(reference, outputs, tolerance=1e-4)
        assert parity.ok, parity


def test_dict_outputs_come_back_as_dicts(exported):
    model, path = exported["hrnetv2p_w18"]
    x = torch.randn(2, 3, *SIZE)
    outputs = OnnxRunner(path)(x)
    with torch.no_grad():
        reference = model(x)
    assert isinstance(outputs, OrderedDict) and list(outputs) == list(reference)
    assert compare_outputs(reference, outputs, 1e-4).ok


def test_int8_model_is_smaller_and_close(exported, tmp_path):
    model, path = exported["pose_hrnet_w32"]
    calibration = [torch.randn(4, 3, *SIZE) for _ in range(2)]
    int8 = quantize_onnx(path, tmp_path / "int8.onnx", calibration)
    import onnx

    ops = {node.op_type for node in onnx.load(int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    x = calibration[0]
    with torch.no_grad():
        parity = compare_outputs(model(x), OnnxRunner(int8)(x), tolerance=0.25)
    assert parity.ok, parity
    assert parity.max_abs_diff > 1e-6  # it really is quantized


def test_errors_name_the_problem(tmp_path, pose_model):
    with pytest.raises(ConfigError, match="not found"):
        OnnxRunner(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match="opset"):
        export_onnx(pose_model, tmp_path / "old.onnx", torch.randn(1, 3, *SIZE), opset=11)
