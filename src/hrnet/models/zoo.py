"""The weights registry: one table of the released HRNet checkpoints and where each comes from.

Every entry names the file, the address(es) it is published at, the preset (and builder options) it
belongs to, its licence and, where the publisher gives one, its SHA-256 (OpenMMLab publishes the first
8 hex digits in the file name). Entries whose only sources are cloud-drive share pages cannot be
downloaded by a program: :func:`manual_download_message` says where to get the file by hand and how
to register it (``hrnet weights add NAME FILE``). Downloading, checksums and the cache are in
:mod:`hrnet.models.download`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, did_you_mean

__all__ = ["WeightsEntry", "WEIGHTS", "TASKS", "list_weights", "get_weights_entry", "is_registered",
           "manual_download_message"]

TASKS = ("pose", "segmentation", "classification", "detection")

MIT = "MIT"
APACHE = "Apache-2.0"


@dataclass(frozen=True)
class WeightsEntry:
    """One released checkpoint."""

    name: str
    task: str
    #: who publishes it: official, timm, mmpose, mmseg, mmdet
    origin: str
    #: the hrnet preset (``hrnet info --list``) or detector preset the weights fit
    preset: str
    file_name: str
    #: where the file is published, most direct first
    urls: tuple[str, ...]
    licence: str
    description: str
    #: builder options the weights need beside the preset (classes, joints, fusion upsampling, ...)
    overrides: dict[str, Any] = field(default_factory=dict)
    #: the full SHA-256 where the publisher gives it
    sha256: str | None = None
    #: the leading hex digits of the SHA-256 where only those are published (OpenMMLab file names)
    sha256_prefix: str | None = None
    #: False when every address is a share page (Google Drive, OneDrive, Baidu) a program cannot fetch
    downloadable: bool = True
    #: the publisher's config the weights were trained with
    config: str = ""


# ---------------------------------------------------------------------------------- official releases

POSE_REPO = "https://github.com/leoxiaobin/deep-high-resolution-net.pytorch"
POSE_DRIVES = ("https://drive.google.com/drive/folders/14p2l1u19bLOm5p6esKyolYJyfE1_inLv",
               "https://onedrive.live.com/?authkey=%21AEwfaSueYurmSRA&id=56B9F9C97F261712%2111775"
               "&cid=56B9F9C97F261712")
SEG_RELEASES = "https://github.com/hsfzxjy/models.storage/releases/download/HRNet-OCR/"
SEG_REPO = "https://github.com/HRNet/HRNet-Semantic-Segmentation"
CLS_REPO = "https://github.com/HRNet/HRNet-Image-Classification"
CLS_ONEDRIVE = {
    "w18_small_v1": "gRv2PI1vjJyn2g7G?e=i8Rdzx", "w18_small_v2": "gRmfdPR79WBS61Qn?e=HVZUi8",
    "w18": "cMkPimlmClRvmpw", "w30": "cQoACCEfrzcSaVI", "w32": "dYBMemi9xOUFR0w", "w40": "ck0gvo5jfoWBOPo",
    "w44": "czZQ0woUb980gRs", "w48": "dKvqI6pBZlifgJk", "w64": "gQbJsUPTIj3rQu99",
}


def _official_pose(width: int, dataset: str, size: str) -> WeightsEntry:
    mpii = dataset == "mpii"
    return WeightsEntry(
        f"pose_hrnet_w{width}_{dataset}_{size}", "pose", "official", f"pose_hrnet_w{width}",
        f"pose_hrnet_w{width}_{size}.pth", (*POSE_DRIVES, POSE_REPO), MIT,
        f"HRNet-W{width} top-down pose, {dataset.upper()} {size} (official, folder pose_{dataset}/)",
        overrides={"num_joints": 16} if mpii else {}, downloadable=False,
        config=f"experiments/{dataset}/hrnet/w{width}_{size}_adam_lr1e-3.yaml")


HIGHER_REPO = "https://github.com/HRNet/HigherHRNet-Human-Pose-Estimation"
HIGHER_DRIVE = "https://drive.google.com/drive/folders/1X9-TzWpwbX2zQf2To8lB-ZQHMYviYYh6"
#: the COCO checkpoints in the official Drive folder: (width, input) -> (file name, Drive file id)
HIGHER_FILES = {(32, 512): ("pose_higher_hrnet_w32_512.pth", "1V9Iz0ZYy9m8VeaspfKECDW0NKlGsYmO1"),
                (32, 640): ("pose_higher_hrnet_w32_640.pth.tar", "1uEcQlm1rjV-JRgVbaP79Y5sMLqUX2ciD"),
                (48, 640): ("pose_higher_hrnet_w48_640.pth.tar", "10j9Wx_I2H6qaw-prAdlJ44fLryDtA-ah")}


def _official_higher(width: int, size: int) -> WeightsEntry:
    file_name, drive_id = HIGHER_FILES[width, size]
    preset = f"pose_higherhrnet_w{width}" + ("_640" if (width, size) == (32, 640) else "")
    return WeightsEntry(
        f"pose_higherhrnet_w{width}_coco_{size}", "pose", "official", preset, file_name,
        (f"https://drive.google.com/file/d/{drive_id}/view", HIGHER_DRIVE, HIGHER_REPO), MIT,
        f"HigherHRNet-W{width} bottom-up pose, COCO {size}x{size} (official)", downloadable=False,
        config=f"experiments/coco/higher_hrnet/w{width}_{size}_adam_lr1e-3.yaml")


def _official_seg(name: str, file_stem: str, dataset: str, classes: int, ocr: bool) -> WeightsEntry:
    preset = "seg_hrnetv2_w48_ocr" if ocr else "seg_hrnetv2_w48"
    head = "HRNetV2-W48 + OCR" if ocr else "HRNetV2-W48"
    return WeightsEntry(name, "segmentation", "official", preset, f"{file_stem}.pth",
                        (SEG_RELEASES + f"{file_stem}.pth", SEG_REPO + "/tree/HRNet-OCR"), MIT,
                        f"{head}, {dataset} (official HRNet-OCR branch release)",
                        overrides={"num_classes": classes} if classes != 19 else {})


def _official_cls(suffix: str) -> WeightsEntry:
    small = suffix.startswith("w18_small")
    file_name = f"hrnet_{suffix.replace('small_', 'small_model_')}.pth" if small else \
        f"hrnetv2_{suffix}_imagenet_pretrained.pth"
    return WeightsEntry(
        f"cls_hrnet_{suffix}_imagenet", "classification", "official", f"cls_hrnet_{suffix}", file_name,
        (f"https://1drv.ms/u/s!Aus8VCZ_C_33{CLS_ONEDRIVE[suffix]}", CLS_REPO + "/releases/tag/PretrainedWeights",
         CLS_REPO), MIT, f"HRNet-{suffix.upper().replace('_', '-')}-C ImageNet classification (official)",
        downloadable=False)


# --------------------------------------------------------------------------------------------- timm

def _timm(tag: str, preset: str, licence: str = MIT) -> WeightsEntry:
    return WeightsEntry(
        f"timm_{tag}", "classification", "timm", preset, f"{tag}.safetensors",
        (f"https://huggingface.co/timm/{tag}/resolve/main/model.safetensors",), licence,
        f"timm {tag} ImageNet weights (official classification layout)")


# ---------------------------------------------------------------------------------------- OpenMMLab

MMPOSE = "https://download.openmmlab.com/mmpose/top_down/hrnet/"
MMPOSE_BOTTOM_UP = "https://download.openmmlab.com/mmpose/bottom_up/"
MMSEG = "https://download.openmmlab.com/mmsegmentation/v0.5/"
MMDET = "https://download.openmmlab.com/mmdetection/v2.0/hrnet/"
#: mmsegmentation's HRNet fuses with nearest upsampling (its default ``upsample_cfg``) and its heads resize
#: with ``align_corners=False``
MMSEG_BACKBONE = {"upsample": "nearest", "align_corners": False}
MMSEG_CLASSES = {"cityscapes": 19, "ade20k": 150, "pascal_context": 60, "pascal_context_59": 59, "voc12aug": 21}
MMSEG_PRESETS = {("hr18s", False): ("seg_hrnetv2_w18", {"small": "v2"}), ("hr18", False): ("seg_hrnetv2_w18", {}),
                 ("hr48", False): ("seg_hrnetv2_w48", {}), ("hr18s", True): ("seg_hrnetv2_w18_ocr", {"small": "v2"}),
                 ("hr18", True): ("seg_hrnetv2_w18_ocr", {}), ("hr48", True): ("seg_hrnetv2_w48_ocr", {})}


def _openmmlab_file(url: str) -> tuple[str, str]:
    """The file name of an OpenMMLab URL and the SHA-256 prefix it carries (``..._<date>-<8 hex>.pth``)."""
    file_name = url.rsplit("/", 1)[-1]
    return file_name, file_name.rsplit("-", 1)[-1].split(".", 1)[0]


def _mmpose(width: int, dataset: str, size: str, stamp: str) -> WeightsEntry:
    url = f"{MMPOSE}hrnet_w{width}_{dataset}_{size}-{stamp}.pth"
    file_name, prefix = _openmmlab_file(url)
    return WeightsEntry(
        f"mmpose_hrnet_w{width}_{dataset}_{size}", "pose", "mmpose", f"pose_hrnet_w{width}", file_name, (url,),
        APACHE, f"mmpose top-down heatmap HRNet-W{width}, {dataset.upper()} {size}",
        overrides={"num_joints": 16} if dataset == "mpii" else {}, sha256_prefix=prefix,
        config=f"configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/{dataset}/hrnet_w{width}_{dataset}_{size}.py")


def _mmpose_higher(width: int, size: int, stamp: str) -> WeightsEntry:
    url = f"{MMPOSE_BOTTOM_UP}higher_hrnet{width}_coco_{size}x{size}-{stamp}.pth"
    file_name, prefix = _openmmlab_file(url)
    preset = f"pose_higherhrnet_w{width}" + ("_640" if (width, size) == (32, 640) else "")
    return WeightsEntry(
        f"mmpose_higherhrnet_w{width}_coco_{size}", "pose", "mmpose", preset, file_name, (url,), APACHE,
        f"mmpose associative-embedding HigherHRNet-W{width}, COCO {size}x{size}", sha256_prefix=prefix,
        config=f"configs/body/2d_kpt_sview_rgb_img/associative_embedding/coco/higherhrnet_w{width}_coco_{size}x{size}.py")


def _mmseg(head: str, arch: str, crop: str, schedule: str, dataset: str, stamp: str) -> WeightsEntry:
    ocr = head == "ocrnet"
    config = f"{head}_{arch}_{crop}_{schedule}_{dataset}"
    url = f"{MMSEG}{'ocrnet' if ocr else 'hrnet'}/{config}/{config}_{stamp}.pth"
    file_name, prefix = _openmmlab_file(url)
    preset, options = MMSEG_PRESETS[(arch, ocr)]
    classes = MMSEG_CLASSES[dataset]
    overrides = {**options, **MMSEG_BACKBONE, **({"num_classes": classes} if classes != 19 else {})}
    return WeightsEntry(f"mmseg_{config}", "segmentation", "mmseg", preset, file_name, (url,), APACHE,
                        f"mmsegmentation {'OCRNet' if ocr else 'FCN'} {arch.upper()}, {dataset}, {schedule}",
                        overrides=overrides, sha256_prefix=prefix,
                        config=f"configs/{'ocrnet' if ocr else 'hrnet'}/{config}.py")


def _mmdet(arch: str, width: int, schedule: str, stamp: str) -> WeightsEntry:
    config = f"{arch}_hrnetv2p_w{width}_{schedule}_coco"
    url = f"{MMDET}{config}/{config}_{stamp}.pth"
    file_name, prefix = _openmmlab_file(url)
    detector = "fcos" if arch.startswith("fcos") else arch
    return WeightsEntry(f"mmdet_{config}", "detection", "mmdet", f"{detector}_hrnetv2p_w{width}", file_name, (url,),
                        APACHE, f"mmdetection {detector.replace('_', ' ')} HRNetV2p-W{width}, COCO, {schedule}",
                        sha256_prefix=prefix, config=f"configs/hrnet/{config}.py")


WEIGHTS: dict[str, WeightsEntry] = {e.name: e for e in [
    _official_pose(32, "coco", "256x192"), _official_pose(32, "coco", "384x288"),
    _official_pose(48, "coco", "256x192"), _official_pose(48, "coco", "384x288"),
    _official_pose(32, "mpii", "256x256"), _official_pose(48, "mpii", "256x256"),
    *(_official_higher(w, size) for w, size in HIGHER_FILES),
    WeightsEntry("seg_hrnetv2_w48_cityscapes_trainset", "segmentation", "official", "seg_hrnetv2_w48",
                 "hrnet_w48_cityscapes_cls19_1024x2048_trainset.pth", (SEG_REPO + "/tree/pytorch-v1.1",), MIT,
                 "HRNetV2-W48, Cityscapes train (official pytorch-v1.1 release, OneDrive/BaiduYun)",
                 downloadable=False),
    _official_seg("seg_hrnetv2_w48_cityscapes", "hrnet_cs_8090_torch11", "Cityscapes", 19, ocr=False),
    _official_seg("seg_hrnetv2_w48_ocr_cityscapes", "hrnet_ocr_cs_8162_torch11", "Cityscapes", 19, ocr=True),
    _official_seg("seg_hrnetv2_w48_ocr_cityscapes_trainval", "hrnet_ocr_cs_trainval_8227_torch11",
                  "Cityscapes train+val", 19, ocr=True),
    _official_seg("seg_hrnetv2_w48_pascal_context_59", "hrnet_pascal_ctx_5410_torch11", "PASCAL-Context 59", 59,
                  ocr=False),
    _official_seg("seg_hrnetv2_w48_ocr_pascal_context_59", "hrnet_ocr_pascal_ctx_5618_torch11",
                  "PASCAL-Context 59", 59, ocr=True),
    _official_seg("seg_hrnetv2_w48_lip", "hrnet_lip_5583_torch04", "LIP", 20, ocr=False),
    _official_seg("seg_hrnetv2_w48_ocr_lip", "hrnet_ocr_lip_5648_torch04", "LIP", 20, ocr=True),
    _official_seg("seg_hrnetv2_w48_cocostuff", "hrnet_cocostuff_3617_torch04", "COCO-Stuff", 171, ocr=False),
    _official_seg("seg_hrnetv2_w48_ocr_cocostuff", "hrnet_ocr_cocostuff_3965_torch04", "COCO-Stuff", 171, ocr=True),
    _official_seg("seg_hrnetv2_w48_ade20k", "hrnet_ade20k_4312_torch04", "ADE20K", 150, ocr=False),
    _official_seg("seg_hrnetv2_w48_ocr_ade20k", "hrnet_ocr_ade20k_4451_torch04", "ADE20K", 150, ocr=True),
    *(_official_cls(s) for s in CLS_ONEDRIVE),
    _timm("hrnet_w18_small.ms_in1k", "cls_hrnet_w18_small_v1"),
    _timm("hrnet_w18_small.gluon_in1k", "cls_hrnet_w18_small_v1", APACHE),
    _timm("hrnet_w18_small_v2.ms_in1k", "cls_hrnet_w18_small_v2"),
    _timm("hrnet_w18_small_v2.gluon_in1k", "cls_hrnet_w18_small_v2", APACHE),
    _timm("hrnet_w18.ms_in1k", "cls_hrnet_w18"), _timm("hrnet_w18.ms_aug_in1k", "cls_hrnet_w18"),
    *(_timm(f"hrnet_w{w}.ms_in1k", f"cls_hrnet_w{w}") for w in (30, 32, 40, 44, 48, 64)),
    _timm("hrnet_w18_ssld.paddle_in1k", "cls_hrnet_w18", APACHE),
    _timm("hrnet_w48_ssld.paddle_in1k", "cls_hrnet_w48", APACHE),
    _mmpose(32, "coco", "256x192", "c78dce93_20200708"), _mmpose(32, "coco", "384x288", "d9f0d786_20200708"),
    _mmpose(48, "coco", "256x192", "b9e0b3ab_20200708"), _mmpose(48, "coco", "384x288", "314c8528_20200708"),
    _mmpose(32, "mpii", "256x256", "6c4f923f_20200812"), _mmpose(48, "mpii", "256x256", "92cab7bd_20200812"),
    _mmpose_higher(32, 512, "8ae85183_20200713"), _mmpose_higher(32, 640, "a22fe938_20200712"),
    _mmpose_higher(48, 512, "60fedcbc_20200712"),
    _mmseg("fcn", "hr18s", "512x1024", "40k", "cityscapes", "20200601_014216-93db27d0"),
    _mmseg("fcn", "hr18", "512x1024", "40k", "cityscapes", "20200601_014216-f196fb4e"),
    _mmseg("fcn", "hr48", "512x1024", "40k", "cityscapes", "20200601_014240-a989b146"),
    _mmseg("fcn", "hr18s", "512x1024", "160k", "cityscapes", "20200602_190901-4a0797ea"),
    _mmseg("fcn", "hr18", "512x1024", "160k", "cityscapes", "20200602_190822-221e4a4f"),
    _mmseg("fcn", "hr48", "512x1024", "160k", "cityscapes", "20200602_190946-59b7973e"),
    _mmseg("fcn", "hr18s", "512x512", "160k", "ade20k", "20200614_214413-870f65ac"),
    _mmseg("fcn", "hr18", "512x512", "160k", "ade20k", "20200614_214426-ca961836"),
    _mmseg("fcn", "hr48", "512x512", "160k", "ade20k", "20200614_214407-a52fc02c"),
    _mmseg("fcn", "hr48", "480x480", "80k", "pascal_context", "20200911_155322-847a6711"),
    _mmseg("fcn", "hr48", "480x480", "80k", "pascal_context_59", "20210411_003240-3ae7081e"),
    _mmseg("fcn", "hr48", "512x512", "40k", "voc12aug", "20200613_222111-1b0f18bc"),
    _mmseg("ocrnet", "hr18s", "512x1024", "160k", "cityscapes", "20200602_191005-f4a7af28"),
    _mmseg("ocrnet", "hr18", "512x1024", "160k", "cityscapes", "20200602_191001-b9172d0c"),
    _mmseg("ocrnet", "hr48", "512x1024", "160k", "cityscapes", "20200602_191037-dfbf1b0c"),
    _mmseg("ocrnet", "hr18s", "512x512", "160k", "ade20k", "20200615_184505-8e913058"),
    _mmseg("ocrnet", "hr18", "512x512", "160k", "ade20k", "20200615_200940-d8fcd9d1"),
    _mmseg("ocrnet", "hr48", "512x512", "160k", "ade20k", "20200615_184705-a073726d"),
    _mmseg("ocrnet", "hr48", "512x512", "40k", "voc12aug", "20200614_015958-255bc5ce"),
    _mmdet("faster_rcnn", 18, "1x", "20200130-56651a6d"), _mmdet("faster_rcnn", 18, "2x", "20200702_085731-a4ec0611"),
    _mmdet("faster_rcnn", 32, "1x", "20200130-6e286425"), _mmdet("faster_rcnn", 32, "2x", "20200529_015927-976a9c15"),
    _mmdet("faster_rcnn", 40, "1x", "20200210-95c1f5ce"), _mmdet("faster_rcnn", 40, "2x", "20200512_161033-0f236ef4"),
    _mmdet("mask_rcnn", 18, "1x", "20200205-1c3d78ed"), _mmdet("mask_rcnn", 18, "2x", "20200212-b3c825b1"),
    _mmdet("mask_rcnn", 32, "1x", "20200207-b29f616e"), _mmdet("mask_rcnn", 32, "2x", "20200213-45b75b4d"),
    _mmdet("mask_rcnn", 40, "1x", "20200511_015646-66738b35"),
    _mmdet("mask_rcnn", 40, "2x", "20200512_163732-aed5e4ab"),
    _mmdet("fcos", 18, "gn-head_4x4_1x", "20201212_100710-4ad151de"),
    _mmdet("fcos", 18, "gn-head_4x4_2x", "20201212_101110-5c575fa5"),
    _mmdet("fcos", 32, "gn-head_4x4_1x", "20201211_134730-cb8055c0"),
    _mmdet("fcos", 32, "gn-head_4x4_2x", "20201212_112133-77b6b9bb"),
]}


def list_weights(task: str | None = None) -> list[WeightsEntry]:
    """The registry's entries, optionally of one task (``pose``, ``segmentation``, ``classification``,
    ``detection``; ``seg``, ``cls``, ``det`` also work)."""
    if task is None:
        return list(WEIGHTS.values())
    wanted = {"seg": "segmentation", "cls": "classification", "det": "detection"}.get(task, task)
    if wanted not in TASKS:
        raise ConfigError(f"unknown task {task!r}.{did_you_mean(task, TASKS)} Known: {', '.join(TASKS)}.")
    return [e for e in WEIGHTS.values() if e.task == wanted]


def is_registered(name: str) -> bool:
    return name in WEIGHTS


def get_weights_entry(name: str) -> WeightsEntry:
    if name not in WEIGHTS:
        raise ConfigError(f"{name!r} is not in the weights registry.{did_you_mean(name, WEIGHTS)} "
                          "See `hrnet weights list`.")
    return WEIGHTS[name]


def manual_download_message(entry: WeightsEntry, target: str) -> str:
    """One paragraph for a checkpoint a program cannot download: where to get it and how to register it."""
    pages = " or ".join(entry.urls)
    return (f"{entry.name} ({entry.description}) is published only on share pages that a program cannot "
            f"download from: save the file {entry.file_name} by hand from {pages}, then register it with "
            f"`hrnet weights add {entry.name} /path/to/{entry.file_name}`; it is checked, converted to "
            f"safetensors and kept in {target}, and from then on `--weights {entry.name}` and "
            f"build_model(..., weights={entry.name!r}) use it.")
