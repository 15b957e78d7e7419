"""Whole OpenMMLab checkpoints (mmpose, mmsegmentation, mmdetection) into hrnet's models.

Each test writes a state dict with the key names of a released OpenMMLab checkpoint, as their model
code names them (the HRNet backbone under ``backbone.`` keeps the official names, which our models
share; head names are spelt out here), at a reduced width, and loads it with ``strict=True``.
"""

import re

import pytest
import torch

import hrnet
from hrnet.errors import CheckpointError
from hrnet.models.weights import convert_checkpoint, load_weights
from hrnet.tasks.detection.models import build_detector

SMALL = {"width": 4, "blocks": 1, "modules": (1, 1, 1), "stage1_blocks": 1}
BN = ("weight", "bias", "running_mean", "running_var")
BACKBONE = re.compile(r"(conv1|bn1|conv2|bn2|layer1|transition\d|stage\d)\.")


def randomised(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: (torch.rand(v.shape, generator=generator) + 0.5 if v.is_floating_point() else v.clone())
            for k, v in model.state_dict().items()}


def backbone(model: torch.nn.Module, prefix: str = "", counters: bool = False) -> dict[str, torch.Tensor]:
    """The backbone of ``model`` under mm's ``backbone.`` (plus BN counters, which mm's BN has and a
    frozen-BN detector does not)."""
    out = {}
    for key, value in randomised(model).items():
        if key.startswith(prefix) and BACKBONE.match(key[len(prefix):]):
            out["backbone." + key[len(prefix):]] = value
            if counters and key.endswith("running_var"):
                out["backbone." + key[len(prefix):-len("running_var")] + "num_batches_tracked"] = torch.tensor(5)
    return out


def conv_module(prefix: str, cout: int, cin: int, k: int = 1, norm: str = "bn") -> dict[str, torch.Tensor]:
    """An mmcv ConvModule with a norm: a bias-free conv and the norm's tensors."""
    out = {f"{prefix}.conv.weight": torch.randn(cout, cin, k, k)}
    names = BN if norm == "bn" else ("weight", "bias")
    out.update({f"{prefix}.{norm}.{n}": torch.rand(cout) + 0.5 for n in names})
    if norm == "bn":
        out[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(3)
    return out


def conv(prefix: str, cout: int, cin: int, k: int = 1) -> dict[str, torch.Tensor]:
    return {f"{prefix}.weight": torch.randn(cout, cin, k, k), f"{prefix}.bias": torch.randn(cout)}


# ----------------------------------------------------------------------------------------------- mmpose


@pytest.mark.parametrize("head", ["keypoint_head", "head"])  # mmpose 0.x TopDown / 1.x TopdownPoseEstimator
def test_mmpose_topdown_heatmap_hrnet(head):
    model = hrnet.build_model("pose_hrnet_w32", **SMALL)
    state = {**backbone(model), **conv(f"{head}.final_layer", 17, 4)}
    report = load_weights(model, state, strict=True, verbose=False)
    assert torch.equal(model.final_layer.weight, state[f"{head}.final_layer.weight"])
    assert torch.equal(model.conv1.weight, state["backbone.conv1.weight"])
    assert not report.missing and not report.unexpected


def test_mmpose_ae_higherhrnet_head():
    """mmpose 0.x ``AEHigherResolutionHead``: ``keypoint_head.final_layers`` and ``.deconv_layers`` (ConvTranspose
    + BN under ``N.0.{0,1}``, BasicBlocks under ``N.M.0``), the official HigherHRNet names."""
    model = hrnet.build_model("pose_higherhrnet_w32", **SMALL)
    head = {f"keypoint_head.{k}": v for k, v in randomised(model, seed=1).items()
            if k.startswith(("final_layers.", "deconv_layers."))}
    assert {"keypoint_head.deconv_layers.0.0.0.weight", "keypoint_head.deconv_layers.0.4.0.conv2.weight"} <= set(head)
    state = {**backbone(model), **head}
    report = load_weights(model, state, strict=True, verbose=False)
    assert torch.equal(model.deconv_layers[0][0][0].weight, state["keypoint_head.deconv_layers.0.0.0.weight"])
    assert torch.equal(model.final_layers[1].bias, state["keypoint_head.final_layers.1.bias"])
    assert not report.missing and not report.unexpected
    top_down = hrnet.build_model("pose_hrnet_w32", **SMALL)
    with pytest.raises(CheckpointError, match="AE HigherHRNet head"):
        load_weights(top_down, state, strict=True, verbose=False)


# ---------------------------------------------------------------------------------------------- mmseg


def test_mmseg_fcn_head_maps_onto_last_layer():
    model = hrnet.build_model("seg_hrnetv2_w18", num_classes=5, **SMALL)
    channels = sum(model.cfg.out_channels)
    state = {**backbone(model), **conv_module("decode_head.convs.0", channels, channels),
             **conv("decode_head.conv_seg", 5, channels),
             **conv_module("auxiliary_head.convs.0", 8, channels), **conv("auxiliary_head.conv_seg", 5, 8)}
    report = load_weights(model, state, strict=True, verbose=False)
    assert torch.equal(model.last_layer[0].weight, state["decode_head.convs.0.conv.weight"])
    assert torch.equal(model.last_layer[0].bias, torch.zeros(channels))  # mm's ConvModule conv has no bias
    assert torch.equal(model.last_layer[1].running_var, state["decode_head.convs.0.bn.running_var"])
    assert torch.equal(model.last_layer[3].bias, state["decode_head.conv_seg.bias"])
    assert "auxiliary_head.conv_seg.weight" in report.skipped


def ocr_head(channels: int, classes: int, mid: int, key: int) -> dict[str, torch.Tensor]:
    block = "decode_head.1.object_context_block"
    return {**conv_module("decode_head.0.convs.0", channels, channels),
            **conv("decode_head.0.conv_seg", classes, channels),
            **conv_module("decode_head.1.bottleneck", mid, channels, 3),
            **conv_module(f"{block}.query_project.0", key, mid), **conv_module(f"{block}.query_project.1", key, key),
            **conv_module(f"{block}.key_project.0", key, mid), **conv_module(f"{block}.key_project.1", key, key),
            **conv_module(f"{block}.value_project", key, mid), **conv_module(f"{block}.out_project", mid, key),
            **conv_module(f"{block}.bottleneck", mid, 2 * mid), **conv("decode_head.1.conv_seg", classes, mid)}


def test_mmseg_ocrnet_cascade_maps_onto_the_ocr_model():
    model = hrnet.build_model("seg_hrnetv2_w18_ocr", num_classes=5, ocr_mid_channels=16, ocr_key_channels=8, **SMALL)
    state = {**backbone(model), **ocr_head(sum(model.cfg.out_channels), 5, 16, 8)}
    load_weights(model, state, strict=True, verbose=False)
    attention, block = model.ocr_distri_head.object_context_block, "decode_head.1.object_context_block"
    assert torch.equal(attention.f_pixel[2].weight, state[f"{block}.query_project.1.conv.weight"])
    assert torch.equal(attention.f_object[3][0].bias, state[f"{block}.key_project.1.bn.bias"])
    assert torch.equal(attention.f_up[0].weight, state[f"{block}.out_project.conv.weight"])
    assert torch.equal(model.conv3x3_ocr[0].weight, state["decode_head.1.bottleneck.conv.weight"])
    assert torch.equal(model.ocr_distri_head.conv_bn_dropout[1][0].running_mean,
                       state["decode_head.1.object_context_block.bottleneck.bn.running_mean"])
    assert torch.equal(model.aux_head[3].weight, state["decode_head.0.conv_seg.weight"])
    assert torch.equal(model.cls_head.bias, state["decode_head.1.conv_seg.bias"])


def test_mmseg_ocrnet_into_a_plain_segmentation_model_lists_what_is_left_over():
    ocr = hrnet.build_model("seg_hrnetv2_w18_ocr", num_classes=5, ocr_mid_channels=16, ocr_key_channels=8, **SMALL)
    model = hrnet.build_model("seg_hrnetv2_w18", num_classes=5, **SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {**backbone(ocr), **ocr_head(sum(ocr.cfg.out_channels), 5, 16, 8)}
    with pytest.raises(CheckpointError, match=r"an mmseg checkpoint.*left over: decode_head\.0\.convs\.0\.conv\."):
        load_weights(model, state, verbose=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_mmseg_head_of_another_structure_is_refused():
    model = hrnet.build_model("seg_hrnetv2_w18", num_classes=5, **SMALL)
    channels = sum(model.cfg.out_channels)
    state = {**backbone(model), **conv_module("decode_head.convs.0", channels, channels),
             **conv_module("decode_head.convs.1", channels, channels), **conv("decode_head.conv_seg", 5, channels)}
    with pytest.raises(CheckpointError, match=r"decode_head\.convs\.1\.conv\.weight.*num_convs=1"):
        load_weights(model, state, verbose=False)


# ---------------------------------------------------------------------------------------------- mmdet


def detector(arch: str, num_classes: int = 3) -> torch.nn.Module:
    return build_detector(arch, "hrnetv2p_w18", num_classes=num_classes, backbone_overrides=SMALL)


def hrfpn(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    neck = model.backbone.neck
    state = conv("neck.reduction_conv.conv", 256, neck.reduction_conv.in_channels)
    for i in range(len(neck.fpn_convs)):
        state.update(conv(f"neck.fpn_convs.{i}.conv", 256, 256, 3))
    return state


def two_stage(model: torch.nn.Module, classes: int, masks: bool) -> dict[str, torch.Tensor]:
    """A Faster/Mask R-CNN checkpoint of mmdetection 2.x (``roi_head.``, background last)."""
    state = {**backbone(model, "backbone.", counters=True), **hrfpn(model),
             **conv("rpn_head.rpn_conv", 256, 256, 3), **conv("rpn_head.rpn_cls", 3, 256),
             **conv("rpn_head.rpn_reg", 12, 256),
             "roi_head.bbox_head.shared_fcs.0.weight": torch.randn(1024, 256 * 7 * 7),
             "roi_head.bbox_head.shared_fcs.0.bias": torch.randn(1024),
             "roi_head.bbox_head.shared_fcs.1.weight": torch.randn(1024, 1024),
             "roi_head.bbox_head.shared_fcs.1.bias": torch.randn(1024),
             "roi_head.bbox_head.fc_cls.weight": torch.randn(classes + 1, 1024),
             "roi_head.bbox_head.fc_cls.bias": torch.randn(classes + 1),
             "roi_head.bbox_head.fc_reg.weight": torch.randn(4 * classes, 1024),
             "roi_head.bbox_head.fc_reg.bias": torch.randn(4 * classes)}
    if masks:
        for i in range(4):
            state.update(conv(f"roi_head.mask_head.convs.{i}.conv", 256, 256, 3))
        state.update({"roi_head.mask_head.upsample.weight": torch.randn(256, 256, 2, 2),
                      "roi_head.mask_head.upsample.bias": torch.randn(256),
                      **conv("roi_head.mask_head.conv_logits", classes, 256)})
    return state


def test_mmdet_faster_rcnn_maps_onto_torchvision_with_the_background_first():
    model = detector("faster_rcnn")
    state = two_stage(model, 3, masks=False)
    report = load_weights(model, state, strict=True, verbose=False)
    heads = model.roi_heads
    fc_cls, fc_reg = state["roi_head.bbox_head.fc_cls.weight"], state["roi_head.bbox_head.fc_reg.weight"]
    assert torch.equal(heads.box_predictor.cls_score.weight[0], fc_cls[3])  # mmdet's background is last
    assert torch.equal(heads.box_predictor.cls_score.weight[1:], fc_cls[:3])
    assert torch.equal(heads.box_predictor.bbox_pred.weight[:4], torch.zeros(4, 1024))
    assert torch.equal(heads.box_predictor.bbox_pred.weight[4:], fc_reg)
    assert torch.equal(heads.box_head.fc7.weight, state["roi_head.bbox_head.shared_fcs.1.weight"])
    assert torch.equal(model.rpn.head.conv[0][0].weight, state["rpn_head.rpn_conv.weight"])
    assert torch.equal(model.rpn.head.cls_logits.bias, state["rpn_head.rpn_cls.bias"])
    assert torch.equal(model.backbone.neck.fpn_convs[4].weight, state["neck.fpn_convs.4.conv.weight"])
    assert torch.equal(model.backbone.stage4[0].fuse_layers[0][3][0].weight,
                       state["backbone.stage4.0.fuse_layers.0.3.0.weight"])
    assert "backbone.bn1.num_batches_tracked" in report.skipped  # frozen BN keeps no counters


def test_mmdet_mask_rcnn_maps_the_fcn_mask_head():
    model = detector("mask_rcnn")
    state = two_stage(model, 3, masks=True)
    load_weights(model, state, strict=True, verbose=False)
    logits = model.roi_heads.mask_predictor.mask_fcn_logits
    assert torch.equal(logits.weight[1:], state["roi_head.mask_head.conv_logits.weight"])
    assert torch.equal(logits.weight[0], torch.zeros(256, 1, 1))
    assert torch.equal(model.roi_heads.mask_head[2][0].weight, state["roi_head.mask_head.convs.2.conv.weight"])
    assert torch.equal(model.roi_heads.mask_predictor.conv5_mask.weight, state["roi_head.mask_head.upsample.weight"])


def test_mmdet_cascade_stage_without_a_cascade_model_is_listed():
    model = detector("faster_rcnn")
    state = two_stage(model, 3, masks=False)
    state["roi_head.bbox_head.1.fc_cls.weight"] = torch.randn(4, 1024)
    with pytest.raises(CheckpointError, match=r"left over: roi_head\.bbox_head\.1\.fc_cls\.weight \(-> roi_heads"):
        load_weights(model, state, verbose=False)


def test_mmdet_cascade_rcnn_maps_each_stage():
    """mmdetection's Cascade R-CNN keeps one class-agnostic 2-FC box head per stage (``roi_head.bbox_head.<t>``)."""
    model = detector("cascade_rcnn")
    state = {k: v for k, v in two_stage(model, 3, masks=False).items() if not k.startswith("roi_head.")}
    for t in range(3):
        state.update({f"roi_head.bbox_head.{t}.shared_fcs.0.weight": torch.randn(1024, 256 * 7 * 7),
                      f"roi_head.bbox_head.{t}.shared_fcs.0.bias": torch.randn(1024),
                      f"roi_head.bbox_head.{t}.shared_fcs.1.weight": torch.randn(1024, 1024),
                      f"roi_head.bbox_head.{t}.shared_fcs.1.bias": torch.randn(1024),
                      f"roi_head.bbox_head.{t}.fc_cls.weight": torch.randn(4, 1024),
                      f"roi_head.bbox_head.{t}.fc_cls.bias": torch.randn(4),
                      f"roi_head.bbox_head.{t}.fc_reg.weight": torch.randn(4, 1024),  # reg_class_agnostic
                      f"roi_head.bbox_head.{t}.fc_reg.bias": torch.randn(4)})
    load_weights(model, state, strict=True, verbose=False)
    for t, stage in enumerate(model.roi_heads.stages):
        fc_cls = state[f"roi_head.bbox_head.{t}.fc_cls.weight"]
        assert torch.equal(stage.box_predictor.cls_score.weight[0], fc_cls[3])  # background last -> first
        assert torch.equal(stage.box_predictor.bbox_pred.weight, state[f"roi_head.bbox_head.{t}.fc_reg.weight"])
        assert torch.equal(stage.box_head.fc6.weight, state[f"roi_head.bbox_head.{t}.shared_fcs.0.weight"])


def fcos_head(classes: int, scale: float = 1.0) -> dict[str, torch.Tensor]:
    state = {}
    for branch in ("cls_convs", "reg_convs"):
        for i in range(4):
            state.update(conv_module(f"bbox_head.{branch}.{i}", 256, 256, 3, norm="gn"))
    state.update({**conv("bbox_head.conv_cls", classes, 256, 3), **conv("bbox_head.conv_reg", 4, 256, 3),
                  **conv("bbox_head.conv_centerness", 1, 256, 3)})
    state.update({f"bbox_head.scales.{i}.scale": torch.tensor(scale) for i in range(5)})
    return state


def test_mmdet_fcos_maps_onto_torchvision_fcos():
    model = detector("fcos")
    state = {**backbone(model, "backbone.", counters=True), **hrfpn(model), **fcos_head(3)}
    report = load_weights(model, state, strict=True, verbose=False)
    head = model.head
    assert torch.equal(head.classification_head.conv[3].weight, state["bbox_head.cls_convs.1.conv.weight"])
    assert torch.equal(head.classification_head.conv[3].bias, torch.zeros(256))
    assert torch.equal(head.regression_head.conv[10].weight, state["bbox_head.reg_convs.3.gn.weight"])
    assert torch.equal(head.classification_head.cls_logits.weight[1:], state["bbox_head.conv_cls.weight"])
    assert head.classification_head.cls_logits.bias[0] < -10  # label 0 never fires
    assert torch.equal(head.regression_head.bbox_ctrness.bias, state["bbox_head.conv_centerness.bias"])
    assert any("centerness" in note for note in report.notes)


def test_mmdet_fcos_with_learned_scales_says_they_cannot_map():
    model = detector("fcos")
    state = {**backbone(model, "backbone.", counters=True), **hrfpn(model), **fcos_head(3, scale=1.3)}
    with pytest.raises(CheckpointError, match=r"bbox_head\.scales\.0\.scale"):
        load_weights(model, state, verbose=False)


def test_mmdet_checkpoint_into_a_pose_model_lists_the_unmatched_keys():
    faster = detector("faster_rcnn")
    model = hrnet.build_model("pose_hrnet_w32", **SMALL)
    with pytest.raises(CheckpointError, match=r"an mmdet checkpoint.*left over: (neck|rpn_head|roi_head)\."):
        load_weights(model, two_stage(faster, 3, masks=False), verbose=False)


def test_convert_writes_the_model_layout(tmp_path):
    model = hrnet.build_model("pose_hrnet_w32", **SMALL)
    src = tmp_path / "hrnet_w32_coco_256x192.pth"
    torch.save({"meta": {"epoch": 210}, "state_dict": {**backbone(model), **conv("keypoint_head.final_layer", 17, 4)}},
               src)
    info = convert_checkpoint(src, tmp_path / "w32.safetensors", model=model)
    fresh = hrnet.build_model("pose_hrnet_w32", **SMALL)
    load_weights(fresh, tmp_path / "w32.safetensors", strict=True, verbose=False)
    assert torch.equal(fresh.final_layer.weight, model.final_layer.weight)
    assert any("mmpose" in note for note in info["notes"])


def test_hrnet_convert_of_a_detector_checkpoint(tmp_path, capsys):
    from hrnet.cli.main import main

    model = detector("faster_rcnn")
    src = tmp_path / "faster_rcnn_hrnetv2p_w18_1x_coco_20200130-56651a6d.pth"
    state = two_stage(model, 3, masks=False)
    torch.save({"meta": {"CLASSES": ("a", "b", "c")}, "state_dict": state}, src)
    small = "{width: 4, blocks: 1, modules: [1, 1, 1], stage1_blocks: 1}"
    argv = ["convert", str(src), str(tmp_path / "frcnn.safetensors"), "--model", "faster_rcnn_hrnetv2p_w18",
            "--set", "num_classes=3", "--set", f"backbone_overrides={small}"]
    assert main(argv) == 0
    fresh = detector("faster_rcnn")
    load_weights(fresh, tmp_path / "frcnn.safetensors", strict=True, verbose=False)
    assert torch.equal(fresh.roi_heads.box_predictor.cls_score.weight[0], state["roi_head.bbox_head.fc_cls.weight"][3])
    assert main([*argv[:3], "--model", "mask_rcnn_hrnetv2p_w18", *argv[5:]]) == 2
    assert "missing" in capsys.readouterr().err  # no mask head in a Faster R-CNN file


def test_a_mapped_mask_rcnn_runs():
    model = build_detector("mask_rcnn", "hrnetv2p_w18", num_classes=3, backbone_overrides=SMALL, min_size=64,
                           max_size=64, rpn_pre_nms_top_n_test=20, rpn_post_nms_top_n_test=20, box_score_thresh=0.0)
    load_weights(model, two_stage(model, 3, masks=True), strict=True, verbose=False)
    with torch.no_grad():
        (out,) = model.eval()([torch.rand(3, 64, 64)])
    assert out["boxes"].shape[1] == 4 and out["masks"].shape[1:] == (1, 64, 64)
    assert all(1 <= label <= 3 for label in out["labels"].tolist())  # never the background
