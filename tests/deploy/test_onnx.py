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


def test_int8_ranges_are_the_mean_of_group_extremes(tmp_path):
    """One outlier image widens only its own group's range: the input's uint8 scale follows the mean of
    the per-group min/max over groups of CALIBRATION_GROUP images, however the caller batched them."""
    import onnx
    from onnx import numpy_helper

    from hrnet.deploy.onnx import CALIBRATION_GROUP

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    source = export_onnx(model.eval(), tmp_path / "small.onnx", torch.zeros(1, 3, 8, 8))
    images = torch.rand(2 * CALIBRATION_GROUP, 3, 8, 8) * 2 - 1  # within [-1, 1]
    images[0, 0, 0, 0], images[1, 0, 0, 0] = 1.0, -1.0  # every group spans exactly [-1, 1] ...
    images[CALIBRATION_GROUP, 0, 0, 0], images[CALIBRATION_GROUP + 1, 0, 0, 0] = 1.0, -1.0
    images[-1, 0, 0, 0] = 9.0  # ... but the second one reaches 9
    calibration = images.split([5, 20, 2 * CALIBRATION_GROUP - 25])
    proto = onnx.load(quantize_onnx(source, tmp_path / "small.int8.onnx", calibration))
    weights = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    quantize_input = next(n for n in proto.graph.node
                          if n.op_type == "QuantizeLinear" and n.input[0] == proto.graph.input[0].name)
    low, high = -1.0, (1.0 + 9.0) / 2  # the global min/max would be -1, 9
    assert float(weights[quantize_input.input[1]]) == pytest.approx((high - low) / 255, rel=1e-5)
    with pytest.raises(ConfigError, match="calibration images"):
        quantize_onnx(source, tmp_path / "none.onnx", [])


def test_errors_name_the_problem(tmp_path, pose_model):
    with pytest.raises(ConfigError, match="not found"):
        OnnxRunner(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match="opset"):
        export_onnx(pose_model, tmp_path / "old.onnx", torch.randn(1, 3, *SIZE), opset=11)


def _detection_rows(detections: dict) -> torch.Tensor:
    """(score, label, box) rows in a canonical order: detections tied in score may come in any order."""
    rows = torch.cat([detections["scores"].float()[:, None], detections["labels"].float()[:, None],
                      detections["boxes"].float()], dim=1)
    for column in reversed(range(rows.shape[1])):
        rows = rows[rows[:, column].argsort(stable=True)]
    return rows


@pytest.mark.parametrize("arch, options", [
    ("faster_rcnn", {}),
    # three box heads: a narrower pyramid and fewer proposals keep the export quick
    ("cascade_rcnn", {"backbone_overrides": {"out_channels": 32}, "rpn_post_nms_top_n_test": 300}),
], ids=["faster_rcnn", "cascade_rcnn"])
def test_two_stage_detector_exports_with_any_image_size(arch, options, tmp_path):
    from torch import nn

    from hrnet.deploy.onnx import export_detector_onnx
    from hrnet.tasks.detection.models import build_detector

    torch.manual_seed(0)
    options = dict(options)
    backbone = {"width": 4, "blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1,
                **options.pop("backbone_overrides", {})}
    model = build_detector(arch, "hrnetv2p_w18", num_classes=3, min_size=96, max_size=128,
                           backbone_overrides=backbone, **options)
    for m in model.modules():  # the default head init scores every box alike; ties would make the test moot
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.normal_(m.weight, std=m.weight[0].numel() ** -0.5)
    path = export_detector_onnx(model.eval(), tmp_path / "det.onnx", (96, 120))
    runner = OnnxRunner(path)
    for size in [(96, 120), (80, 70)]:
        image = torch.rand(3, *size)
        with torch.no_grad():
            reference = model([image])[0]
        detections = runner([image])[0]
        assert set(detections) == set(reference) and len(reference["boxes"]) > 0
        torch.testing.assert_close(_detection_rows(detections), _detection_rows(reference), atol=1e-3, rtol=1e-4)


def test_centernet_exports_with_any_image_size(tmp_path):
    from hrnet.deploy.onnx import export_detector_onnx, is_detector
    from hrnet.tasks.detection.models import build_detector

    torch.manual_seed(0)
    model = build_detector("centernet", "hrnetv2_w48", num_classes=3, min_size=96, head_channels=16,
                           backbone_overrides={"width": 2, "blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1})
    assert is_detector(model)
    for conv in model.head.modules():  # spread the scores (at init every cell scores about 0.1)
        if isinstance(conv, torch.nn.Conv2d):
            torch.nn.init.normal_(conv.weight, std=conv.weight[0].numel() ** -0.5)
    path = export_detector_onnx(model.eval(), tmp_path / "centernet.onnx", (96, 120))
    runner = OnnxRunner(path)
    for size in [(96, 120), (70, 150)]:
        image = torch.rand(3, *size, generator=torch.Generator().manual_seed(sum(size)))
        with torch.no_grad():
            reference = model([image])[0]
        detections = runner([image])[0]
        assert set(detections) == set(reference) and len(detections["boxes"]) == len(reference["boxes"]) == 100
        # the top 100 of many close peaks: compare those clear of the 100th score (rounding may swap the rest)
        margin = reference["scores"].min() + 1e-3
        rows, expected = (_detection_rows({k: v[d["scores"] > margin] for k, v in d.items()})
                          for d in (detections, reference))
        assert len(expected) > 10
        torch.testing.assert_close(rows, expected, atol=1e-4, rtol=1e-4)
