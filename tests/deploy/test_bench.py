import json

import pytest
import torch
from conftest import SIZE, make_tiny

import hrnet
from hrnet.deploy.bench import (
    BenchReport,
    PathResult,
    conv_peak_gflops,
    measure_path,
    recalibrate_batchnorm,
    time_per_call,
)


def test_time_per_call_is_the_median_after_warmup():
    calls = []
    seconds = time_per_call(lambda: calls.append(1), min_time=0.0, min_calls=7, warmup=3)
    assert len(calls) == 10 and 0 <= seconds < 0.01


def test_recalibrated_batchnorm_gives_unit_scale_activations():
    model = hrnet.build_model("pose_hrnet_w32", width=4, blocks=1, modules=(1, 1, 1), stage1_blocks=1).eval()
    x = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        before = model.forward_branches(x)[0].std().item()
        recalibrate_batchnorm(model, SIZE)
        after = model.forward_branches(x)[0].std().item()
    assert before < 1e-3 < 0.1 < after < 10  # the official N(0, 0.001) init shrinks activations
    assert not model.training
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_conv_peak_is_measured():
    assert conv_peak_gflops(min_time=0.0) > 1


def test_measure_path_times_each_batch_and_checks_parity():
    result = measure_path(make_tiny("pose_hrnet_w32"), "channels_last", SIZE, batches=[1, 2], min_time=0.0)
    assert set(result.ms_per_img) == {1, 2} and all(v > 0 for v in result.ms_per_img.values())
    assert result.parity_ok and result.max_abs_diff < 1e-3
    assert result.peak_rss_mib > 10


def test_report_derives_speedup_gflops_and_share_of_peak():
    eager = PathResult("eager", "fp32", {1: 10.0, 8: 8.0}, 900.0, 0.0, True)
    fast = PathResult("compile", "fp32", {1: 4.0, 8: 2.0}, 800.0, 3e-6, True)
    broken = PathResult("onnxruntime", "fp32", error="Traceback ...\nRuntimeError: boom")
    report = BenchReport("pose", (256, 192), 2, 10**9, {"cpu": "x", "cores": 2, "torch": "t", "date": "d",
                                                        "load_before": 0.1, "load_after": 0.2},
                         {"fp32_channels_last": 1000.0}, None, [eager, fast, broken])
    assert report.speedup(fast, 1) == pytest.approx(2.5) and report.speedup(fast, 8) == pytest.approx(4.0)
    table = report.markdown()
    row = next(line for line in table.splitlines() if line.startswith("| compile"))
    # batch 1: 4 ms/img -> 250 img/s, 2e9 FLOP / 4 ms = 500 GFLOP/s = 50 % of the 1000 GFLOP/s peak
    assert "| 4.0 | 250.0 | 500 (50 %) | 2.50× |" in row and "| 2.0 | 500.0 | 1000 (100 %) | 4.00× |" in row
    assert "failed: RuntimeError: boom" in table
    json.dumps(report.to_json())
