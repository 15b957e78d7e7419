"""Checkpoint loading and saving: every official saved form, transfer, safetensors, URLs, bad files."""

import argparse
import hashlib
import json
import re
import warnings

import numpy as np
import pytest
import torch

import hrnet
from hrnet.errors import CheckpointError
from hrnet.models.weights import (
    convert_checkpoint,
    describe_state_dict,
    load_state_dict_file,
    load_weights,
    save_weights,
)

TINY = {"width": 4, "blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1}


def tiny(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    """A small preset with random weights and BN statistics, so that copies are detectable."""
    torch.manual_seed(seed)
    model = hrnet.build_model(name, **{**TINY, **overrides})
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                value.copy_(torch.rand_like(value) + 0.5 if "running_var" in key else torch.randn_like(value))
            else:
                value.fill_(seed + 7)
    return model


def tiny_cls(seed: int = 0) -> torch.nn.Module:
    return tiny("cls_hrnet_w18", seed, head_channels=(4, 4, 4, 4), final_channels=8, num_classes=5)


def assert_same(state: dict, model: torch.nn.Module, keys=None) -> None:
    current = model.state_dict()
    for key in keys if keys is not None else current:
        assert torch.equal(current[key], state[key]), key


def official_keys(shared_reference, name: str) -> dict[str, torch.Tensor]:
    """An official state dict layout (key names and shapes) as meta tensors."""
    out = {}
    for line in (shared_reference / "official-keys" / f"{name}.txt").read_text().splitlines():
        key, shape = line.split(" ", 1)
        out[key] = torch.empty(tuple(int(d) for d in re.findall(r"\d+", shape)), device="meta")
    return out


# ----------------------------------------------------------------------------------- saved forms


def _plain(sd, optimizer):
    return sd


def _pose_checkpoint(sd, optimizer):  # deep-high-resolution-net tools/train.py save_checkpoint
    return {"epoch": 3, "model": "pose_hrnet", "state_dict": {f"module.{k}": v for k, v in sd.items()},
            "best_state_dict": sd, "perf": np.float64(0.74), "optimizer": optimizer}


def _best_state_dict(sd, optimizer):
    return {"epoch": 3, "best_state_dict": sd}


def _seg_checkpoint(sd, optimizer):  # HRNet-Semantic-Segmentation: FullModel(model, loss) wrapped in DDP
    state = {f"module.model.{k}": v for k, v in sd.items()}
    state["module.loss.criterion.weight"] = torch.rand(19)
    return {"epoch": 10, "best_mIoU": np.float64(0.81), "state_dict": state, "optimizer": optimizer}


def _seg_final_state(sd, optimizer):  # FullModel.state_dict(): 'model.' prefix plus the class weights
    return {**{f"model.{k}": v for k, v in sd.items()}, "loss.criterion.weight": torch.rand(19)}


def _inplace_abn(sd, optimizer):  # seg master branch: InPlaceABN has no num_batches_tracked
    return {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}


def _timm_train_checkpoint(sd, optimizer):
    return {"epoch": 1, "arch": "hrnet_w18", "state_dict": sd, "state_dict_ema": sd, "optimizer": optimizer,
            "args": argparse.Namespace(lr=0.1, model="hrnet_w18"), "version": 2}


SAVED_FORMS = [_plain, _pose_checkpoint, _best_state_dict, _seg_checkpoint, _seg_final_state, _inplace_abn,
               _timm_train_checkpoint]


@pytest.mark.parametrize("form", SAVED_FORMS, ids=lambda f: f.__name__.strip("_"))
def test_every_official_saved_form_loads_exactly(form, tmp_path):
    source = tiny("seg_hrnetv2_w18", seed=1, num_classes=3)
    optimizer = torch.optim.SGD(source.parameters(), lr=0.1, momentum=0.9)
    for p in source.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()  # gives the optimizer its momentum buffers, as in a real checkpoint
    sd = {k: v.clone() for k, v in source.state_dict().items()}
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(form(sd, optimizer.state_dict()), path)

    model = tiny("seg_hrnetv2_w18", seed=2, num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_weights(model, path, strict=True, verbose=False)

    assert report.missing == [] and report.unexpected == [] and report.mismatched == []
    weights = [k for k in sd if not k.endswith("num_batches_tracked")]
    assert_same(sd, model, weights)
    counters = [k for k in sd if k.endswith("num_batches_tracked")]
    assert_same(sd if form is not _inplace_abn else before, model, counters)  # InPlaceABN: model's kept
    if form in (_seg_checkpoint, _seg_final_state):
        assert report.skipped == ["loss.criterion.weight"]


def test_load_state_dict_file_unwraps_without_normalising(tmp_path):
    sd = tiny("pose_hrnet_w32").state_dict()
    torch.save(_pose_checkpoint(sd, {}), tmp_path / "checkpoint.pth")
    loaded = load_state_dict_file(tmp_path / "checkpoint.pth")
    assert list(loaded) == [f"module.{k}" for k in sd]  # the latest weights ('state_dict'), keys as stored


def test_classification_weights_give_a_pose_model_its_backbone():
    cls_model, pose = tiny_cls(seed=1), tiny("pose_hrnet_w32", seed=2)
    head_before = pose.final_layer.weight.clone()
    report = load_weights(pose, cls_model.state_dict(), verbose=False)

    backbone = [k for k in pose.state_dict() if not k.startswith("final_layer")]
    assert_same(cls_model.state_dict(), pose, backbone)
    assert report.loaded == backbone
    assert report.missing == ["final_layer.weight", "final_layer.bias"]
    assert torch.equal(pose.final_layer.weight, head_before)
    assert report.unexpected == []
    head = {k for k in cls_model.state_dict() if k.split(".")[0] in
            ("incre_modules", "downsamp_modules", "final_layer", "classifier")}
    assert head <= set(report.skipped)
    # pose's last module fuses into the high-resolution branch only; the others' fuse layers are skipped
    unused_fusion = {k for k in cls_model.state_dict()
                     if k.startswith("stage4.0.fuse_layers.") and not k.startswith("stage4.0.fuse_layers.0.")}
    assert set(report.skipped) - head == unused_fusion


def test_official_classification_keys_transfer_into_official_segmentation_layout(shared_reference):
    with torch.device("meta"):
        seg = hrnet.build_model("seg_hrnetv2_w18")
    cls_state = official_keys(shared_reference, "cls_hrnet_w18")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copying into meta tensors is a no-op torch warns about
        report = load_weights(seg, cls_state, verbose=False)
    head = ("incre_modules", "downsamp_modules", "final_layer", "classifier")
    assert sorted(report.skipped) == sorted(k for k in cls_state if k.split(".")[0] in head)
    assert report.missing == [k for k in seg.state_dict() if k.startswith("last_layer")
                              and not k.endswith("num_batches_tracked")]
    assert len(report.loaded) == len(cls_state) - len(report.skipped)


@pytest.mark.parametrize(("preset", "keys", "wrap"), [
    ("pose_hrnet_w32", "pose_hrnet_w32", lambda sd: _pose_checkpoint(sd, {})),
    ("seg_hrnetv2_w48_ocr", "seg_hrnet_ocr_w48",
     lambda sd: {**{f"model.{k}": v for k, v in sd.items() if not k.endswith("num_batches_tracked")},
                 "loss.criterion.weight": torch.empty(19, device="meta")}),
    ("cls_hrnet_w18", "cls_hrnet_w18", lambda sd: sd),
], ids=["pose_checkpoint", "seg_ocr_final_state_inplace_abn", "cls_plain"])
def test_official_layouts_load_strictly(preset, keys, wrap, shared_reference):
    with torch.device("meta"):
        model = hrnet.build_model(preset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = load_weights(model, wrap(official_keys(shared_reference, keys)), strict=True, verbose=False)
    assert report.missing == [] and report.unexpected == []


def test_timm_ssld_weights_without_head_conv_biases_get_zero_biases():
    source = tiny_cls(seed=1)
    sd = {k: v for k, v in source.state_dict().items()
          if not re.fullmatch(r"(downsamp_modules\.\d\.0|final_layer\.0)\.bias", k)}
    assert len(sd) == len(source.state_dict()) - 4
    model = tiny_cls(seed=2)
    report = load_weights(model, sd, strict=True, verbose=False)
    assert all(torch.count_nonzero(m[0].bias) == 0 for m in [*model.downsamp_modules, model.final_layer])
    assert_same(sd, model, list(sd))
    assert any("zero biases" in note for note in report.notes)


def test_mmdetection_backbone_prefix_is_moved_onto_the_model():
    source, model = tiny("hrnetv2p_w18", seed=1, out_channels=8), tiny("hrnetv2p_w18", seed=2, out_channels=8)
    backbone = [k for k in source.state_dict() if not k.startswith("neck.")]
    detector = {f"backbone.{k}": source.state_dict()[k] for k in backbone}
    detector["rpn_head.rpn_conv.weight"] = torch.zeros(8, 8, 3, 3)
    with pytest.raises(CheckpointError, match="backbone_only=True"):
        load_weights(model, {"meta": {}, "state_dict": detector}, verbose=False)
    report = load_weights(model, {"meta": {}, "state_dict": detector}, backbone_only=True, verbose=False)
    assert_same(source.state_dict(), model, backbone)
    assert report.skipped == ["rpn_head.rpn_conv.weight"]


def test_summary_is_printed(capsys):
    load_weights(tiny("pose_hrnet_w32", seed=2), tiny_cls(seed=1).state_dict())
    err = capsys.readouterr().err
    assert "2 missing, 0 unexpected" in err and "final_layer.weight" in err and "incre_modules" in err


# ------------------------------------------------------------------------- safetensors, URL, convert


def test_safetensors_round_trip_with_metadata(tmp_path):
    source = tiny("pose_hrnet_w32", seed=1)
    config = {"num_joints": 17, "width": 4}
    path = save_weights(source, tmp_path / "pose.safetensors", {"config": config, "source": "unit test"})
    assert [p.name for p in tmp_path.iterdir()] == ["pose.safetensors"]  # no temporary file left behind
    model = tiny("pose_hrnet_w32", seed=2)
    report = load_weights(model, path, strict=True, verbose=False)
    assert_same(source.state_dict(), model)
    assert report.metadata["preset"] == "pose_hrnet_w32"
    assert json.loads(report.metadata["config"]) == config and report.metadata["source"] == "unit test"
    assert sorted(load_state_dict_file(path)) == sorted(source.state_dict())


def test_file_url_is_downloaded_into_the_cache_once(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("HRNET_CACHE", str(cache))
    source = tiny("pose_hrnet_w32", seed=1)
    original = tmp_path / "pose_w4.pth"
    torch.save(source.state_dict(), original)
    url = original.as_uri()
    load_weights(tiny("pose_hrnet_w32", seed=2), url, strict=True, verbose=False)
    assert [p.name for p in cache.iterdir()] == ["pose_w4.pth"]
    original.unlink()  # the second load reads the cached copy
    model = tiny("pose_hrnet_w32", seed=3)
    load_weights(model, url, strict=True, verbose=False)
    assert_same(source.state_dict(), model)


def test_unreachable_url_is_a_checkpoint_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HRNET_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CheckpointError, match="cannot download"):
        load_weights(tiny("pose_hrnet_w32"), (tmp_path / "absent.pth").as_uri(), verbose=False)


def test_convert_official_checkpoint(tmp_path):
    source = tiny("seg_hrnetv2_w18", seed=1, num_classes=3)
    torch.save(_seg_final_state(source.state_dict(), {}), tmp_path / "best.pth")
    info = convert_checkpoint(tmp_path / "best.pth", tmp_path / "out" / "seg.safetensors",
                              model=tiny("seg_hrnetv2_w18", seed=2, num_classes=3), metadata={"dataset": "x"})
    written = json.loads((tmp_path / "out" / "seg.json").read_text())
    assert written == info
    assert written["preset"] == "seg_hrnetv2_w18" and written["dataset"] == "x"
    assert "segmentation head (3 classes)" in written["architecture"]
    assert written["source_sha256"] == hashlib.sha256((tmp_path / "best.pth").read_bytes()).hexdigest()
    converted = load_state_dict_file(tmp_path / "out" / "seg.safetensors")
    assert sorted(converted) == sorted(source.state_dict())  # no 'model.' prefix, no loss buffer
    assert_same(converted, source)


def test_convert_without_model_normalises_keys(tmp_path):
    source = tiny("pose_hrnet_w32", seed=1)
    torch.save(_pose_checkpoint(source.state_dict(), {}), tmp_path / "checkpoint.pth")
    convert_checkpoint(tmp_path / "checkpoint.pth", tmp_path / "pose.safetensors")
    model = tiny("pose_hrnet_w32", seed=2)
    load_weights(model, tmp_path / "pose.safetensors", strict=True, verbose=False)
    assert_same(source.state_dict(), model)


# -------------------------------------------------------------------------------------- bad input


def test_other_width_lists_mismatched_shapes_and_leaves_model_untouched():
    model = tiny("pose_hrnet_w32", seed=2, width=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_weights(model, tiny("pose_hrnet_w32", seed=1).state_dict(), verbose=False)
    message = str(info.value)
    assert "transition1.0.0.weight: file [4, 256, 3, 3] vs model [8, 256, 3, 3]" in message
    assert "branch widths 4/8/16/32" in message and "branch widths 8/16/32/64" in message
    assert "more)" in message
    assert_same(before, model)


def test_other_head_size_suggests_backbone_only():
    source, model = tiny("pose_hrnet_w32", seed=1), tiny("pose_hrnet_w32", seed=2, num_joints=16)
    with pytest.raises(CheckpointError, match=r"final_layer.bias: file \[17\] vs model \[16\].*backbone_o"):
        load_weights(model, source.state_dict(), verbose=False)
    report = load_weights(model, source.state_dict(), backbone_only=True, verbose=False)
    assert report.skipped == ["final_layer.weight", "final_layer.bias"]
    assert report.missing == ["final_layer.weight", "final_layer.bias"]


def test_head_of_another_task_is_refused():
    ocr = tiny("seg_hrnetv2_w18_ocr", seed=1, num_classes=3, ocr_mid_channels=8, ocr_key_channels=4)
    seg = tiny("seg_hrnetv2_w18", seed=2, num_classes=3)
    with pytest.raises(CheckpointError, match="OCR segmentation head.*a segmentation head.*backbone_only"):
        load_weights(seg, ocr.state_dict(), verbose=False)


def test_unrelated_state_dict_is_refused():
    with pytest.raises(CheckpointError, match="no tensor of the model.*no HRNet backbone"):
        load_weights(tiny("pose_hrnet_w32"), {"fc.weight": torch.zeros(2, 2)}, verbose=False)


def test_strict_raises_on_missing_tensors():
    sd = tiny("pose_hrnet_w32", seed=1).state_dict()
    del sd["final_layer.bias"]
    with pytest.raises(CheckpointError, match=r"strict=True.*1 missing \(final_layer.bias\)"):
        load_weights(tiny("pose_hrnet_w32"), sd, strict=True, verbose=False)


def test_checkpoint_dict_without_weights_is_refused(tmp_path):
    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "opt.pth")
    with pytest.raises(CheckpointError, match=r"opt.pth: no state dict found.*'epoch' \(int\)"):
        load_state_dict_file(tmp_path / "opt.pth")


def _truncated_torch(tmp_path, sd):
    torch.save(sd, tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "bad.pth").write_bytes(data[: len(data) // 2])
    return tmp_path / "bad.pth"


def _truncated_legacy(tmp_path, sd):
    torch.save(sd, tmp_path / "full.pth", _use_new_zipfile_serialization=False)
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "bad.pth").write_bytes(data[: len(data) // 2])
    return tmp_path / "bad.pth"


def _truncated_safetensors(tmp_path, sd):
    save_weights(sd, tmp_path / "full.safetensors")
    data = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "bad.safetensors").write_bytes(data[: len(data) // 2])
    return tmp_path / "bad.safetensors"


def _garbage(tmp_path, sd):
    (tmp_path / "bad.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    return tmp_path / "bad.pth"


def _empty(tmp_path, sd):
    (tmp_path / "bad.pth").write_bytes(b"")
    return tmp_path / "bad.pth"


BAD_FILES = [_truncated_torch, _truncated_legacy, _truncated_safetensors, _garbage, _empty]


@pytest.mark.parametrize("make", BAD_FILES, ids=lambda f: f.__name__.strip("_"))
def test_corrupt_or_truncated_file_is_one_clear_error(make, tmp_path):
    path = make(tmp_path, tiny("pose_hrnet_w32").state_dict())
    with pytest.raises(CheckpointError, match=r"(corrupt or truncated|empty)") as info:
        load_weights(tiny("pose_hrnet_w32"), path, verbose=False)
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(tiny("pose_hrnet_w32"), tmp_path / "absent.pth", verbose=False)
    with pytest.raises(CheckpointError, match="is a directory"):
        load_state_dict_file(tmp_path)


class _CreatesMarkerWhenUnpickled:
    """A pickle payload: unpickling it calls ``open(marker, 'w')``, creating the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    payload = _CreatesMarkerWhenUnpickled(marker)
    torch.save({"state_dict": tiny("pose_hrnet_w32").state_dict(), "extra": payload}, path)
    with pytest.raises(CheckpointError, match=r"evil.pth was refused.*\(io.open\).*never runs code"):
        load_weights(tiny("pose_hrnet_w32"), path, verbose=False)
    with pytest.raises(CheckpointError, match="refused"):
        load_state_dict_file(path)
    assert not marker.exists()
    # the payload is live: an unrestricted unpickler does run it
    torch.load(path, weights_only=False)["extra"].close()
    assert marker.exists()


def test_describe_names_widths_and_heads():
    text = describe_state_dict(tiny_cls().state_dict())
    assert text == ("an HRNet backbone with branch widths 4/8/16/32 (1/1/1 modules in stages 2/3/4) "
                    "and a classification head (5 classes)")
