"""Initialising other tasks' models from a classification checkpoint transfers the backbone and only it."""

from __future__ import annotations

import torch

import hrnet
from hrnet.models.weights import save_weights

#: a W8 classifier with a narrow head (the head is not what is transferred)
SMALL_HEAD = {"width": 8, "head_channels": (8, 16, 32, 64), "final_channels": 32, "num_classes": 10}


def _randomised(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give every float tensor (weights and BatchNorm statistics) fresh random values, so that a copied
    tensor cannot equal the target's by coincidence."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return model


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_pose_model_from_classification_checkpoint_changes_exactly_the_backbone(tmp_path):
    classifier = _randomised(hrnet.build_model("cls_hrnet_w18", **SMALL_HEAD), seed=1)
    checkpoint = {"state_dict": {f"module.{k}": v for k, v in classifier.state_dict().items()}}
    torch.save(checkpoint, tmp_path / "cls_official_style.pth")  # as the official trainer saves it
    save_weights(classifier, tmp_path / "cls.safetensors")
    source = classifier.state_dict()

    for path in (tmp_path / "cls_official_style.pth", tmp_path / "cls.safetensors"):
        pose = hrnet.build_model("pose_hrnet_w32", width=8)
        before = _snapshot(pose)
        report = hrnet.load_weights(pose, path, verbose=False)
        after = pose.state_dict()

        float_keys = [k for k, v in before.items() if v.is_floating_point()]
        changed = {k for k in float_keys if not torch.equal(before[k], after[k])}
        # The backbone: every tensor before the pose head (stem, layer1, transitions, stages).
        backbone = {k for k in float_keys if not k.startswith("final_layer.")}
        assert changed == backbone, (sorted(changed ^ backbone)[:5], path.name)
        for key in backbone:
            assert torch.equal(after[key], source[key]), key
        head = [k for k in float_keys if k.startswith("final_layer.")]
        assert head and all(torch.equal(after[k], before[k]) for k in head)
        # The report says what was used and what was skipped (the classification head).
        assert set(report.loaded) >= backbone
        assert any(k.startswith(("classifier", "incre_modules")) for k in report.skipped)


def test_classifier_from_its_own_checkpoint_restores_everything(tmp_path):
    classifier = _randomised(hrnet.build_model("cls_hrnet_w18", **SMALL_HEAD), seed=2)
    save_weights(classifier, tmp_path / "cls.safetensors")
    fresh = hrnet.build_model("cls_hrnet_w18", **SMALL_HEAD)
    hrnet.load_weights(fresh, tmp_path / "cls.safetensors", strict=True, verbose=False)
    loaded = fresh.state_dict()
    for key, value in classifier.state_dict().items():
        assert torch.equal(loaded[key], value), key
