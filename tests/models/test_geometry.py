"""What a model states about itself: its geometry, its preprocessing, its parts; detectors in the registry."""

import torch
from torchvision.ops.misc import FrozenBatchNorm2d

import hrnet
from hrnet.models.registry import PRESETS

TINY = {"width": 4, "blocks": 1, "modules": [1, 1, 1], "stage1_blocks": 1}


def _meta(name, **overrides):
    with torch.device("meta"):
        return hrnet.build_model(name, **TINY, **overrides)


def test_backbone_states_its_geometry():
    pose = _meta("pose_hrnet_w32")
    assert pose.size_divisibility == 32 and pose.output_stride == 4
    assert _meta("pose_hrnet_w32", branch=1).output_stride == 8
    seg = _meta("seg_hrnetv2_w18")  # bilinear fusion takes any input size
    assert seg.size_divisibility == 1 and seg.output_stride == 4
    one_stage = _meta("hrnetv2p_w18", pyramid_stride=2)
    assert one_stage.strides == (8, 16, 32, 64, 128) and one_stage.level_names == ["p3", "p4", "p5", "p6", "p7"]
    assert _meta("hrnetv2p_w18").level_names[0] == "p2"


def test_frozen_bn_is_chosen_at_construction():
    model = _meta("hrnetv2p_w18", frozen_bn=True)
    norms = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm2d, FrozenBatchNorm2d))]
    assert norms and all(isinstance(m, FrozenBatchNorm2d) for m in norms)
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in _meta("hrnetv2p_w18").modules())


def test_presets_carry_their_preprocessing_and_parts():
    model = _meta("cls_hrnet_w18")
    cfg = model.pretrained_cfg
    assert cfg["input_size"] == (224, 224) and cfg["mean"] == (0.485, 0.456, 0.406) and len(cfg["std"]) == 3
    assert cfg["head_modules"] == model.head_modules and "classifier" in model.head_modules
    children = {name for name, _ in model.named_children()}
    assert set(model.backbone_modules) | set(model.head_modules) == children
    assert not set(model.backbone_modules) & set(model.head_modules)


def test_detector_presets_are_in_the_model_registry():
    from hrnet.tasks.detection import list_detectors

    assert set(list_detectors()) <= set(PRESETS)
    with torch.device("meta"):
        detector = hrnet.build_model("retinanet_hrnetv2p_w18", num_classes=3, backbone_overrides=TINY)
    assert detector.preset == "retinanet_hrnetv2p_w18" and detector.num_categories == 3
    assert detector.backbone.strides[0] == 8 and isinstance(detector.backbone.bn1, FrozenBatchNorm2d)
