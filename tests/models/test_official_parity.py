"""``from_official`` models reproduce outputs recorded from the official HRNet model code.

The fixture holds, per case, an official config (reduced widths and depths), and summaries of the
official outputs for weights drawn from a seeded generator over the state dict in key order.
"""

import json
from pathlib import Path

import pytest
import torch

import hrnet
from hrnet.models.official import from_official

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "official_outputs.json").read_text())


def seeded_state(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                r = torch.randn(t.shape, generator=g)
                t.copy_(r.abs() * 0.5 + 0.5 if name.endswith("running_var") else r * 0.2)
    return model


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=[c["name"] for c in FIXTURE["cases"]])
def test_matches_official_outputs(case):
    model = seeded_state(from_official(case["config"]), 0).eval()
    x = torch.randn(case["batch"], 3, *case["input_size"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x)
    outs = out if isinstance(out, list) else [out]
    assert len(outs) == len(case["outputs"])
    for got, ref in zip(outs, case["outputs"], strict=True):
        assert list(got.shape) == ref["shape"]
        flat = got.flatten().double()
        values = flat[torch.tensor(ref["index"])]
        torch.testing.assert_close(values, torch.tensor(ref["values"], dtype=torch.float64), atol=1e-5, rtol=1e-5)
        assert flat.sum().item() == pytest.approx(ref["sum"], rel=1e-5, abs=1e-3)
        assert (flat**2).sum().item() == pytest.approx(ref["sumsq"], rel=1e-5)


def test_from_official_yaml_file(tmp_path):
    case = next(c for c in FIXTURE["cases"] if c["name"] == "seg_ac0_67x101")
    import yaml

    path = tmp_path / "seg.yaml"
    path.write_text(yaml.safe_dump(case["config"]))
    from_file = from_official(path)
    from_dict = from_official(case["config"])
    assert from_file.cfg == from_dict.cfg and from_file.cfg.align_corners is False
    assert from_file.num_classes == 5


def test_model_section_alone_and_overrides():
    cfg = next(c for c in FIXTURE["cases"] if c["name"] == "cls")["config"]
    model = from_official(cfg["MODEL"], head_channels=(8, 16, 32, 64), final_channels=128, num_classes=10)
    assert model.classifier.weight.shape == (10, 128)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_official_checkpoint_loads_strictly(tmp_path):
    cfg = next(c for c in FIXTURE["cases"] if c["name"] == "pose")["config"]
    reference = seeded_state(from_official(cfg), 3).eval()
    path = tmp_path / "final_state.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    loaded = from_official(cfg, checkpoint=path).eval()
    x = torch.randn(1, 3, 96, 64)
    torch.testing.assert_close(loaded(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"MODEL": {"EXTRA": {}}}, "MODEL.NAME"),
        ({"MODEL": {"NAME": "pose_hrnett", "EXTRA": {}}}, "pose_hrnet"),
        ({"MODEL": {"NAME": "seg_hrnet", "EXTRA": {"STAGE1": {}}}}, r"STAGE1\.NUM_\w+ is missing"),
        ({"MODEL": {"NAME": "pose_hrnet", "EXTRA": {}}}, "MODEL.EXTRA.STAGE2 is missing"),
    ],
)
def test_bad_official_config(cfg, message):
    with pytest.raises(hrnet.errors.ConfigError, match=message):
        from_official(cfg)


def test_missing_official_file(tmp_path):
    with pytest.raises(hrnet.errors.ConfigError, match="not found"):
        from_official(tmp_path / "nope.yaml")
