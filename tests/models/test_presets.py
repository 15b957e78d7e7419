"""Every preset builds with the official key layout and the paper's complexity; ablations run."""

import re

import pytest
import torch

import hrnet
from hrnet.errors import ConfigError
from hrnet.models.complexity import matches_printed
from hrnet.models.registry import PRESETS

OFFICIAL_KEY_FILES = {
    "pose_hrnet_w32": "pose_hrnet_w32",
    "seg_hrnetv2_w48": "seg_hrnet_w48",
    "seg_hrnetv2_w48_ocr": "seg_hrnet_ocr_w48",
    "cls_hrnet_w18": "cls_hrnet_w18",
    "cls_hrnet_w18_small_v1": "cls_hrnet_w18_small_v1",
    "cls_hrnet_w18_small_v2": "cls_hrnet_w18_small_v2",
}


def meta_model(name: str, **overrides) -> torch.nn.Module:
    with torch.device("meta"):
        return hrnet.build_model(name, **overrides)


def test_registry_lists_required_presets():
    required = ["pose_hrnet_w32", "pose_hrnet_w48", "seg_hrnetv2_w18_ocr", "seg_hrnetv2_w48_ocr"]
    required += [f"seg_hrnetv2_{s}" for s in ("w18_small_v1", "w18_small_v2", "w18", "w32", "w40", "w48")]
    required += [f"cls_hrnet_{s}" for s in ("w18_small_v1", "w18_small_v2", "w18", "w30", "w32", "w40", "w44",
                                             "w48", "w64")]
    required += [f"hrnetv2p_w{w}" for w in (18, 32, 40, 48)]
    assert set(required) <= set(hrnet.list_models())


@pytest.mark.parametrize("name", sorted(OFFICIAL_KEY_FILES))
def test_state_dict_equals_official(name, shared_reference):
    lines = (shared_reference / "official-keys" / f"{OFFICIAL_KEY_FILES[name]}.txt").read_text().splitlines()
    pairs = (ln.split(" ", 1) for ln in lines)
    official = [(k, tuple(int(d) for d in re.findall(r"\d+", shape))) for k, shape in pairs]
    ours = [(k, tuple(v.shape)) for k, v in meta_model(name).state_dict().items()]
    assert ours == official  # same names, shapes and order


def paper_rows():
    return [(name, fig) for name, p in sorted(PRESETS.items()) for fig in p.paper if name != "seg_hrnetv2_w40"]


@pytest.mark.parametrize(("name", "fig"), paper_rows(), ids=lambda v: v if isinstance(v, str) else str(v.input_size))
def test_complexity_matches_paper(name, fig):
    c = hrnet.complexity(meta_model(name), fig.input_size)
    assert matches_printed(c.params_m, fig.params), (c.params_m, fig.params)
    gflops = c.macs / fig.giga  # the source's convention: 1024**3 (HRNet papers) or 1e9 (HigherHRNet README)
    assert matches_printed(gflops, fig.gflops), (gflops, fig.gflops)


def test_complexity_recounts():
    # Exact recounts of the official code and counter (hrnet-facts 4.6), including the W40 row whose paper
    # figures (45.2M / 493.2) the official code does not reproduce either.
    expected = {("seg_hrnetv2_w40", (1024, 2048)): (45.89, 498.67), ("seg_hrnetv2_w48", (1024, 2048)): (65.86, 696.18),
                ("seg_hrnetv2_w48_ocr", (1024, 2048)): (70.37, 1206.37), ("pose_hrnet_w48", (384, 288)): (63.60, 32.88),
                ("seg_hrnetv2_w18", (1024, 2048)): (9.64, 137.28), ("cls_hrnet_w64", (224, 224)): (128.06, 26.91)}
    for (name, size), (params, gflops) in expected.items():
        c = hrnet.complexity(meta_model(name), size)
        assert (round(c.params_m, 2), round(c.gflops, 2)) == (params, gflops), name


def test_complexity_result_forms():
    model = meta_model("pose_hrnet_w32")
    c = hrnet.complexity(model, (256, 192))
    params, gflops, macs = c
    assert c["params"] == params == sum(p.numel() for p in model.parameters())
    assert c.gflops == gflops and macs == round(gflops * 1024**3)
    assert hrnet.complexity(meta_model("pose_hrnet_w32"), (1, 3, 256, 192)) == c


@pytest.mark.parametrize("name", ["pose_hrnet_w32", "seg_hrnetv2_w18", "seg_hrnetv2_w18_ocr", "cls_hrnet_w18",
                                  "hrnetv2p_w18", "seg_hrnetv2_w18_small_v1", "cls_hrnet_w18_small_v2"])
def test_reduced_width_forward_backward(name):
    model = hrnet.build_model(name, width=4)
    out = model(torch.randn(2, 3, 64, 64))
    outs = list(out.values()) if isinstance(out, dict) else out if isinstance(out, list) else [out]
    sum(o.float().mean() for o in outs).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_output_shapes():
    x = torch.randn(1, 3, 64, 96)
    assert hrnet.build_model("pose_hrnet_w32", width=4, num_joints=5)(x).shape == (1, 5, 16, 24)
    assert hrnet.build_model("seg_hrnetv2_w18", width=4, num_classes=3)(x).shape == (1, 3, 16, 24)
    aux, out = hrnet.build_model("seg_hrnetv2_w18_ocr", width=4, num_classes=3, ocr_mid_channels=8,
                                 ocr_key_channels=4)(x)
    assert aux.shape == out.shape == (1, 3, 16, 24)
    assert hrnet.build_model("cls_hrnet_w18", width=4, num_classes=7)(x).shape == (1, 7)
    pyramid = hrnet.build_model("hrnetv2p_w18", width=4)(x)
    assert [(k, v.shape[-2:]) for k, v in pyramid.items()] == [
        ("p2", (16, 24)), ("p3", (8, 12)), ("p4", (4, 6)), ("p5", (2, 3)), ("p6", (1, 1))]
    backbone = hrnet.build_model("seg_hrnetv2_w18", width=4)
    assert {f.name: (f.channels, f.stride) for f in backbone.feature_info} == {
        "res2": (4, 4), "res3": (8, 8), "res4": (16, 16), "res5": (32, 32)}


def test_seg_odd_input_size():
    model = hrnet.build_model("seg_hrnetv2_w18_small_v1", num_classes=2).eval()
    assert model(torch.randn(1, 3, 67, 101)).shape == (1, 2, 17, 26)


ABLATIONS = [
    {"fusion": "across"}, {"fusion": "final"}, {"resolution": "all_from_start"}, {"resolution": "high_only"},
    {"downsample": "bilinear"}, {"fuse_method": "mul"}, {"representation": "v1h"}, {"representation": "v2"},
    {"branch": 2},
]


@pytest.mark.parametrize("knob", ABLATIONS, ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
def test_ablation_knobs_train(knob):
    model = hrnet.build_model("pose_hrnet_w32", width=4, **knob)
    heatmaps = model(torch.randn(2, 3, 64, 64))
    heatmaps.square().mean().backward()
    stride = 4 * 2 ** knob.get("branch", 0)
    assert heatmaps.shape == (2, 17, 64 // stride, 64 // stride)


def test_fusion_knob_counts_fusions():
    def fusing(model):
        return sum(m.fuse_layers is not None for m in model.modules() if hasattr(m, "fuse_layers"))
    assert [fusing(meta_model("seg_hrnetv2_w32", fusion=f)) for f in ("within", "across", "final")] == [8, 3, 1]


def test_resolution_variants_have_own_complexity():
    base = hrnet.complexity(meta_model("pose_hrnet_w32"), (256, 192))
    start = hrnet.complexity(meta_model("pose_hrnet_w32", resolution="all_from_start"), (256, 192))
    high = hrnet.complexity(meta_model("pose_hrnet_w32", resolution="high_only"), (256, 192))
    assert start.params > base.params and high.params < base.params
    assert high.gflops != base.gflops != start.gflops


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="pose_hrnet_w32"):
        hrnet.build_model("pose_hrnet_w23")


def test_unknown_override_suggests():
    with pytest.raises(ConfigError, match="num_joints"):
        hrnet.build_model("pose_hrnet_w32", num_joint=5)


def test_bad_ablation_value():
    with pytest.raises(ConfigError, match="fusion"):
        hrnet.build_model("pose_hrnet_w32", fusion="sometimes")


def test_wrong_channel_count():
    model = hrnet.build_model("cls_hrnet_w18", width=4)
    with pytest.raises(ValueError, match=r"3-channel images .* \(1, 1, 64, 64\)"):
        model(torch.randn(1, 1, 64, 64))


def test_nearest_fusion_needs_multiple_of_32():
    model = hrnet.build_model("pose_hrnet_w32", width=4)
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.randn(1, 3, 100, 75))
