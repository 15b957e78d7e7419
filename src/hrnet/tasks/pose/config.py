"""The sections of a pose config: ``data:`` (:class:`PoseDataConfig`, with its ``codec:`` and ``augment:``),
``eval:`` (:class:`PoseEvalConfig`) and ``loss:`` (:class:`PoseLossConfig`)::

    task: pose
    model: {name: pose_hrnet_w32}
    data:
      root: data/coco
      codec: {name: msra, sigma: 2}
      input_size: [192, 256]   # (w, h)
      val_boxes: detections    # the paper's protocol; 'gt' inflates AP and is reported as such
    loss: {name: mse}
    eval: {flip_test: true}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ...engine.config import EvalConfig, StrictModel
from ...errors import DataError
from .transforms import AugmentConfig

__all__ = ["CodecConfig", "AugmentSection", "KeypointFiles", "PoseDataConfig", "PoseEvalConfig", "PoseLossConfig"]

_DEFAULT_PATHS = {
    "coco": {
        "train_ann": "annotations/person_keypoints_train2017.json",
        "train_images": "train2017",
        "val_ann": "annotations/person_keypoints_val2017.json",
        "val_images": "val2017",
        "detection_file": "person_detection_results/COCO_val2017_detections_AP_H_56_person.json",
    },
    "mpii": {
        "train_ann": "annot/train.json",
        "train_images": "images",
        "val_ann": "annot/valid.json",
        "val_images": "images",
        "detection_file": None,
    },
}


class CodecConfig(StrictModel):
    """Which heatmap codec encodes targets and decodes predictions (``hrnet.tasks.pose.codecs``)."""

    name: Literal["msra", "dark", "udp"] = "msra"
    #: Gaussian sigma in heatmap pixels: 2 at 256x192, 3 at 384x288 in the official configs
    sigma: float = Field(2.0, gt=0)
    #: DARK/UDP decoding blur (None: 11 for DARK, 7 for UDP, as their official code)
    blur_kernel: int | None = Field(None, ge=1)
    #: MSRA quarter-pixel offset at decoding (official ``TEST.POST_PROCESS``)
    post_process: bool = True

    @model_validator(mode="after")
    def _odd_kernel(self) -> CodecConfig:
        if self.blur_kernel is not None and self.blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be odd, got {self.blur_kernel}")
        return self


class AugmentSection(StrictModel):
    """Training augmentation (official COCO values; MPII: scale 0.25, rotation 30, half body off)."""

    scale_factor: float = Field(0.35, ge=0, lt=1)
    #: std of the rotation in degrees; the official code clips at twice this (+/-90 deg for 45)
    rotation_factor: float = Field(45.0, ge=0)
    rot_prob: float = Field(0.6, ge=0, le=1)
    flip: bool = True
    flip_prob: float = Field(0.5, ge=0, le=1)
    half_body_prob: float = Field(0.3, ge=0, le=1)
    half_body_min_joints: int = Field(8, ge=0)

    def to_augment(self) -> AugmentConfig:
        return AugmentConfig(**self.model_dump())


class KeypointFiles(StrictModel):
    """Where a keypoint set lives: the fields the top-down and bottom-up ``data:`` sections share."""

    root: Path
    #: keypoint set: a built-in name ('coco', 'mpii', 'crowdpose') or a meta file (YAML/JSON); None: the
    #: format's own
    meta: str | None = None
    train_ann: str | None = None
    train_images: str | None = None
    val_ann: str | None = None
    val_images: str | None = None

    def split_files(self, split: str) -> tuple[Path, Path]:
        """The annotation file and image folder of ``split`` ('train' or 'val'; ``path`` of the subclass
        resolves them), once ``root`` is known to exist."""
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not self.root.is_dir():
            raise DataError(f"pose dataset root {str(self.root)!r} does not exist (data.root)")
        return self.path(f"{split}_ann"), self.path(f"{split}_images")


class PoseDataConfig(KeypointFiles):
    """The ``data:`` section of a pose config. Relative paths are taken from ``root``."""

    format: Literal["coco", "mpii"] = "coco"
    #: COCO validation boxes: 'detections' (detection_file, the paper's protocol) or 'gt'
    val_boxes: Literal["detections", "gt"] = "detections"
    detection_file: str | None = None
    #: drop detections scoring below this (official ``TEST.IMAGE_THRE``)
    det_score_thre: float = 0.0
    #: the official MPII ``annot/gt_valid.mat`` (head boxes for PCKh); None: a fallback head size
    mpii_gt_file: str | None = None
    #: network input (w, h)
    input_size: tuple[int, int] = (192, 256)
    #: heatmap (w, h); None: input_size / 4 (/ 2^branch for a model predicting from a lower branch)
    heatmap_size: tuple[int, int] | None = None
    codec: CodecConfig = Field(default_factory=CodecConfig)
    augment: AugmentSection = Field(default_factory=AugmentSection)
    color_rgb: bool = True
    #: 'error': a missing image file stops loading, naming it; 'skip': drop its persons and count them
    missing_images: Literal["error", "skip"] = "error"

    def path(self, key: str) -> Path | None:
        """``root / value`` for a path field (its format default when unset); None when there is none."""
        value = getattr(self, key) or _DEFAULT_PATHS[self.format][key]
        if value is None:
            return None
        value = Path(value)
        return value if value.is_absolute() else self.root / value


class PoseEvalConfig(EvalConfig):
    """The ``eval:`` section: the official test-time settings."""

    #: shift the mirrored heatmap one pixel in the flip test; None: the codec's own choice
    shift_heatmap: bool | None = None
    #: rescoring keeps joints whose confidence exceeds this (official ``IN_VIS_THRE``)
    in_vis_thre: float = 0.2
    #: OKS-NMS threshold (official ``OKS_THRE``)
    oks_thre: float = Field(0.9, gt=0)
    soft_nms: bool = False


class PoseLossConfig(StrictModel):
    """The ``loss:`` section (official ``LOSS``)."""

    name: Literal["mse", "ohkm"] = "mse"
    topk: int = Field(8, ge=1)
    use_target_weight: bool = True
    #: multiply target weights by the meta's joint weights (official ``USE_DIFFERENT_JOINTS_WEIGHT``)
    use_joint_weights: bool = False
