"""HigherHRNet: presets, the official layout and config, complexity against the README, ONNX export.

(Output parity with the official model code is in tests/models/test_official_parity.py, cases ``higher_*``.)
"""

import json

import pytest
import torch
from torch import nn

import hrnet
from hrnet.cli.main import main as cli_main
from hrnet.errors import ConfigError
from hrnet.models import get_preset
from hrnet.models.higherhrnet import PoseHigherHRNet

TINY = {"width": 4, "blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1}


def official_w32_512() -> dict:
    """The model and loss sections of the official ``experiments/coco/higher_hrnet/w32_512_adam_lr1e-3.yaml``."""
    stage = {k: {"NUM_MODULES": m, "NUM_BRANCHES": n, "BLOCK": "BASIC", "NUM_BLOCKS": [4] * n,
                 "NUM_CHANNELS": [32 * 2**b for b in range(n)], "FUSE_METHOD": "SUM"}
             for k, m, n in (("STAGE2", 1, 2), ("STAGE3", 4, 3), ("STAGE4", 3, 4))}
    return {
        "LOSS": {"NUM_STAGES": 2, "AE_LOSS_TYPE": "exp", "WITH_AE_LOSS": [True, False],
                 "PUSH_LOSS_FACTOR": [0.001, 0.001], "PULL_LOSS_FACTOR": [0.001, 0.001],
                 "WITH_HEATMAPS_LOSS": [True, True], "HEATMAPS_LOSS_FACTOR": [1.0, 1.0]},
        "MODEL": {"NAME": "pose_higher_hrnet", "NUM_JOINTS": 17, "TAG_PER_JOINT": True, "INIT_WEIGHTS": True,
                  "EXTRA": {"FINAL_CONV_KERNEL": 1, "PRETRAINED_LAYERS": ["*"], "STEM_INPLANES": 64, **stage,
                            "DECONV": {"NUM_DECONVS": 1, "NUM_CHANNELS": [32], "KERNEL_SIZE": [4],
                                       "NUM_BASIC_BLOCKS": 4, "CAT_OUTPUT": [True]}}},
    }


def test_outputs_are_heatmaps_and_tags_at_quarter_then_heatmaps_at_half():
    model = hrnet.build_model("pose_higherhrnet_w32", **TINY).eval()
    with torch.no_grad():
        low, high = model(torch.randn(2, 3, 64, 96))
    assert low.shape == (2, 34, 16, 24)  # 17 heatmaps + 17 tag maps
    assert high.shape == (2, 17, 32, 48)
    assert model.output_strides == (4, 2) and model.num_joints == 17 and model.tag_channels == 17


def test_presets_carry_their_input_size():
    assert get_preset("pose_higherhrnet_w32").pretrained_cfg()["input_size"] == (512, 512)
    assert get_preset("pose_higherhrnet_w32_640").pretrained_cfg()["input_size"] == (640, 640)
    w48 = hrnet.build_model("pose_higherhrnet_w48", **TINY)
    assert w48.pretrained_cfg["input_size"] == (640, 640)
    assert isinstance(w48, PoseHigherHRNet)


def test_official_config_gives_the_preset_with_the_official_keys(tmp_path):
    import yaml

    path = tmp_path / "w32_512_adam_lr1e-3.yaml"  # with sections from_official does not read, as the file
    path.write_text(yaml.safe_dump({**official_w32_512(), "DATASET": {"INPUT_SIZE": 512, "OUTPUT_SIZE": [128, 256]},
                                    "TEST": {"WITH_HEATMAPS": "(True, True)", "WITH_AE": "(True, False)"}}))
    with torch.device("meta"):
        official = hrnet.from_official(path)
        preset = hrnet.build_model("pose_higherhrnet_w32")
    shapes = {k: tuple(v.shape) for k, v in official.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in preset.state_dict().items()}
    assert shapes["final_layers.0.weight"] == (34, 32, 1, 1)
    assert shapes["final_layers.1.weight"] == (17, 32, 1, 1)
    assert shapes["deconv_layers.0.0.0.weight"] == (66, 32, 4, 4)  # ConvTranspose2d over 32 + 34 channels
    assert "deconv_layers.0.4.0.bn2.running_var" in shapes and "deconv_layers.0.5.0.conv1.weight" not in shapes
    head = [k for k in shapes if not k.startswith(tuple(official.backbone_modules))]
    assert {k.split(".")[0] for k in head} == set(PoseHigherHRNet.head_modules)


def test_official_checkpoint_loads_strictly(tmp_path):
    cfg = official_w32_512()
    cfg["MODEL"]["EXTRA"].update({k: {**cfg["MODEL"]["EXTRA"][k], "NUM_BLOCKS": [1] * n,
                                      "NUM_CHANNELS": [4 * 2**b for b in range(n)], "NUM_MODULES": 1}
                                  for k, n in (("STAGE2", 2), ("STAGE3", 3), ("STAGE4", 4))})
    cfg["MODEL"]["EXTRA"]["DECONV"].update(NUM_CHANNELS=[4], NUM_BASIC_BLOCKS=1)
    reference = hrnet.from_official(cfg).eval()
    for p in reference.parameters():
        nn.init.normal_(p, std=0.3)
    path = tmp_path / "model_best.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    loaded = hrnet.from_official(cfg, checkpoint=path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(loaded(x), reference(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    del cfg["MODEL"]["EXTRA"]["DECONV"]["NUM_BASIC_BLOCKS"]
    with pytest.raises(ConfigError, match="DECONV.NUM_BASIC_BLOCKS is missing"):
        hrnet.from_official(cfg)


def test_bad_head_options_are_config_errors():
    cfg = official_w32_512()
    del cfg["MODEL"]["EXTRA"]["DECONV"]
    with pytest.raises(ConfigError, match="MODEL.EXTRA.DECONV is missing"):
        hrnet.from_official(cfg)
    with pytest.raises(ConfigError, match="with_ae=.*needs 2 entries"):
        hrnet.build_model("pose_higherhrnet_w32", with_ae=[True], **TINY)
    with pytest.raises(ConfigError, match="deconv_kernels"):
        hrnet.build_model("pose_higherhrnet_w32", deconv_kernels=[5], **TINY)


def test_options_without_tags_per_joint_and_two_deconvolutions():
    model = hrnet.build_model("pose_higherhrnet_w32", tag_per_joint=False, with_ae=[True, True, False],
                              deconv_channels=[4, 6], deconv_kernels=[4, 3], cat_output=[True, False],
                              num_basic_blocks=1, **TINY).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 18, 16, 16), (1, 18, 32, 32), (1, 17, 64, 64)]
    assert model.output_strides == (4, 2, 1)


@pytest.mark.parametrize(("name", "size", "params", "gflops"), [
    ("pose_higherhrnet_w32", 512, "28.6", "47.9"),
    ("pose_higherhrnet_w32", 640, "28.6", "74.8"),
    ("pose_higherhrnet_w48", 640, "63.8", "154.3"),
])
def test_info_reproduces_the_readme(name, size, params, gflops, capsys):
    """The official README's figures: parameters in millions, GFLOPs = multiply-adds / 1e9."""
    assert cli_main(["info", name, "--input", str(size), str(size), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert f"{row['params'] / 1e6:.1f}" == params
    assert f"{row['gflops']:.1f}" == gflops and row["gflops_unit"] == "1e9"


def test_onnx_export_keeps_both_outputs(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from hrnet.deploy import OnnxRunner, compare_outputs, export_onnx

    torch.manual_seed(0)
    model = hrnet.build_model("pose_higherhrnet_w32", **TINY)
    for m in model.modules():  # non-trivial weights so that parity means something
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, std=m.weight[0].numel() ** -0.5)
    model.eval()
    path = export_onnx(model, tmp_path / "higher.onnx", torch.randn(1, 3, 64, 64))
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
    outputs = OnnxRunner(path)(x)
    assert isinstance(outputs, list) and [o.shape for o in outputs] == [r.shape for r in reference]
    parity = compare_outputs(reference, outputs, tolerance=1e-4)
    assert parity.ok, parity


def test_bench_times_the_preset(tmp_path, capsys):
    tiny = ["--set", "width=4", "--set", "blocks=1", "--set", "modules=[1,1,1]", "--set", "stage1_blocks=1"]
    out = tmp_path / "bench.json"
    code = cli_main(["bench", "pose_higherhrnet_w32", *tiny, "--input", "64", "64", "--batch", "1", "--paths",
                     "channels_last", "--min-time", "0", "--threads", "1", "--no-yardstick", "--json", str(out)])
    assert code == 0, capsys.readouterr()
    results = json.loads(out.read_text())["results"]
    assert [r["path"] for r in results] == ["eager", "channels_last"]
    assert all(r["error"] is None and r["parity_ok"] for r in results)
