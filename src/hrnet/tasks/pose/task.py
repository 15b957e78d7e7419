"""The pose task for the engine: config sections, datasets, loss, and COCO/MPII evaluation.

A pose config has the engine's sections plus three of its own::

    task: pose
    model: {name: pose_hrnet_w32}
    data:                      # PoseDataConfig
      root: data/coco
      codec: {name: msra, sigma: 2}
      input_size: [192, 256]   # (w, h)
      val_boxes: detections    # the paper's protocol; 'gt' inflates AP and is reported as such
    loss: {name: mse}          # PoseLossConfig
    eval: {flip_test: true}    # PoseEvalConfig
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from ...engine.config import EvalConfig, StrictModel
from ...engine.distributed import all_gather_object, is_main_process
from ...engine.task import Task, register_task
from ...errors import ConfigError, DataError, did_you_mean
from ...io import write_json
from ...media import expand_inputs, read_image, video_source, write_image
from .codecs import HeatmapCodec, build_codec
from .datasets import LoadReport, TopDownDataset, load_coco_instances, load_mpii_instances
from .evaluation import (
    coco_keypoint_results,
    evaluate_coco_keypoints,
    head_sizes_from_joints,
    load_mpii_gt_mat,
    mpii_pckh,
    write_results,
)
from .inference import TopDownPredictor, boxes_for_image, infer_heatmaps, load_boxes, predict_video
from .loss import build_loss
from .meta import KeypointMeta, resolve_meta
from .postprocess import make_instances, rescore_and_nms
from .transforms import AugmentConfig
from .visualize import draw_poses

__all__ = ["CodecConfig", "AugmentSection", "PoseDataConfig", "PoseEvalConfig", "PoseLossConfig", "PoseTask"]

logger = logging.getLogger(__name__)

GT_BOX_WARNING = (
    "EVALUATING ON GROUND-TRUTH PERSON BOXES: keypoint AP is higher than with detected boxes (the paper's "
    "protocol, e.g. 76.5 instead of 74.4 for W32 256x192); do not compare it with published numbers."
)

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


class PoseDataConfig(StrictModel):
    """The ``data:`` section of a pose config. Relative paths are taken from ``root``."""

    format: Literal["coco", "mpii"] = "coco"
    root: Path
    #: keypoint set: 'coco', 'mpii' or a meta file (YAML/JSON); None: the format's own
    meta: str | None = None
    train_ann: str | None = None
    train_images: str | None = None
    val_ann: str | None = None
    val_images: str | None = None
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


def _section(cfg: Any, name: str, cls: type) -> Any:
    value = getattr(cfg, name, None)
    if value is None or isinstance(value, dict):
        return cls.model_validate(value or {})
    return value


@register_task
class PoseTask(Task):
    """Top-down human pose estimation (HRNetV1 heatmaps) on COCO-format keypoint sets and MPII."""

    name = "pose"
    DataConfig = PoseDataConfig
    EvalConfig = PoseEvalConfig
    LossConfig = PoseLossConfig
    main_metric = "AP"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.data: PoseDataConfig = _section(cfg, "data", PoseDataConfig)
        self.eval_cfg: PoseEvalConfig = _section(cfg, "eval", PoseEvalConfig)
        self.loss_cfg: PoseLossConfig = _section(cfg, "loss", PoseLossConfig)
        self.meta: KeypointMeta = resolve_meta(self.data.meta or self.data.format)
        if self.data.format == "mpii":
            self.main_metric = "PCKh"
        self.codec: HeatmapCodec = self._build_codec()
        self._model_overrides()  # fail early on a num_joints that does not fit the keypoint meta
        self.criterion = build_loss(self.loss_cfg.name, self.loss_cfg.use_target_weight, self.loss_cfg.topk)

    # ------------------------------------------------------------------------------------------ building

    def _model_overrides(self) -> dict[str, Any]:
        overrides = dict(self.cfg.model.overrides)
        joints = overrides.setdefault("num_joints", self.meta.num_keypoints)
        if joints != self.meta.num_keypoints:
            raise ConfigError(
                f"model.overrides.num_joints={joints} but the keypoint meta {self.meta.name!r} has "
                f"{self.meta.num_keypoints} keypoints"
            )
        return overrides

    def _build_codec(self) -> HeatmapCodec:
        stride = 4 * 2 ** int(self.cfg.model.overrides.get("branch", 0))
        w, h = self.data.input_size
        if w % stride or h % stride:
            raise ConfigError(
                f"data.input_size={list(self.data.input_size)} must be divisible by the model's output stride {stride}"
            )
        if self.cfg.model.overrides.get("upsample", "nearest") == "nearest" and (w % 32 or h % 32):
            raise ConfigError(
                f"data.input_size={list(self.data.input_size)}: both sides must be multiples of 32 for a model "
                "that fuses with nearest upsampling (the official pose models); e.g. [192, 256] or [96, 128]"
            )
        expected = (w // stride, h // stride)
        heatmap_size = self.data.heatmap_size or expected
        if tuple(heatmap_size) != expected:
            raise ConfigError(
                f"data.heatmap_size={list(heatmap_size)} does not match the model output "
                f"{list(expected)} for input {list(self.data.input_size)}"
            )
        c = self.data.codec
        options: dict[str, Any] = {}
        if c.name == "msra":
            options["post_process"] = c.post_process
        elif c.blur_kernel is not None:
            options["blur_kernel"] = c.blur_kernel
        return build_codec(c.name, self.data.input_size, heatmap_size, c.sigma, **options)

    def build_model(self) -> nn.Module:
        from ...models import build_model

        return build_model(self.cfg.model.name, **self._model_overrides())

    def build_dataset(self, split: str) -> TopDownDataset:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        d = self.data
        if not d.root.is_dir():
            raise DataError(f"pose dataset root {str(d.root)!r} does not exist (data.root)")
        ann, images = d.path(f"{split}_ann"), d.path(f"{split}_images")
        train = split == "train"
        coco = None
        if d.format == "mpii":
            instances, report = load_mpii_instances(ann, images, self.meta.num_keypoints, d.missing_images)
        else:
            boxes = "gt" if train else d.val_boxes
            coco, instances, report = load_coco_instances(
                ann,
                images,
                self.meta,
                self.codec.aspect_ratio,
                boxes=boxes,
                det_file=d.path("detection_file"),
                det_score_thre=d.det_score_thre,
                missing_images=d.missing_images,
                box_to_cs=self.codec.box_to_center_scale,
            )
            if not train and boxes == "gt":
                logger.warning(GT_BOX_WARNING)
        if train and not instances:
            raise DataError(f"{ann} has no person with labelled keypoints to train on")
        logger.info("pose %s: %d persons from %d images (%s)", split, report.num_instances, report.num_images, ann)
        return TopDownDataset(
            instances,
            self.codec,
            self.meta,
            train=train,
            augment=d.augment.to_augment(),
            use_joint_weights=self.loss_cfg.use_joint_weights,
            color_rgb=d.color_rgb,
            coco=coco,
            report=report,
        )

    # ------------------------------------------------------------------------------------------ training

    def compute_loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        outputs = model(batch["image"])
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        target, weight = batch["target"], batch["target_weight"]
        loss = sum(self.criterion(out.float(), target, weight) for out in outputs)
        return loss, {}

    # ------------------------------------------------------------------------------------------ evaluation

    @property
    def flip_shift(self) -> bool:
        shift = self.eval_cfg.shift_heatmap
        return self.codec.flip_shift if shift is None else shift

    def predict_heatmaps(self, model: nn.Module, images: Tensor) -> Tensor:
        """The network's heatmaps for a batch of crops, averaged with the flip test when enabled."""
        return infer_heatmaps(model, images, self.meta.flip_pairs, self.eval_cfg.flip_test, self.flip_shift)

    def evaluate(self, model: nn.Module, loader: DataLoader, out_dir: Path) -> dict[str, float]:
        dataset = _unwrap(loader.dataset)
        device = next(model.parameters()).device
        indices, preds, maxvals, centers, scales = [], [], [], [], []
        for batch in loader:
            heatmaps = self.predict_heatmaps(model, batch["image"].to(device))
            p, m = self.codec.decode(heatmaps, batch["center"].numpy(), batch["scale"].numpy())
            indices.append(np.asarray(batch["index"]))
            preds.append(p)
            maxvals.append(m)
            centers.append(batch["center"].numpy())
            scales.append(batch["scale"].numpy())
        k = self.meta.num_keypoints
        local = (
            _cat(indices, (0,), np.int64),
            _cat(preds, (0, k, 2)),
            _cat(maxvals, (0, k, 1)),
            _cat(centers, (0, 2)),
            _cat(scales, (0, 2)),
        )
        gathered = all_gather_object(local)
        index, preds_, maxvals_, centers_, scales_ = (np.concatenate(parts) for parts in zip(*gathered, strict=True))
        index, first = np.unique(index, return_index=True)  # a distributed sampler may repeat samples
        arrays = [a[first] for a in (preds_, maxvals_, centers_, scales_)]
        out_dir = Path(out_dir)
        if self.data.format == "mpii":
            return self._evaluate_mpii(dataset, index, arrays[0], out_dir)
        return self._evaluate_coco(dataset, index, *arrays, out_dir=out_dir)

    def _evaluate_coco(
        self,
        dataset: TopDownDataset,
        index: np.ndarray,
        preds: np.ndarray,
        maxvals: np.ndarray,
        centers: np.ndarray,
        scales: np.ndarray,
        out_dir: Path,
    ) -> dict[str, float]:
        insts = [dataset.instances[i] for i in index]
        instances = make_instances(
            preds, maxvals, centers, scales, [x.score for x in insts], [x.image_id for x in insts]
        )
        kept = rescore_and_nms(
            instances,
            self.eval_cfg.in_vis_thre,
            self.eval_cfg.oks_thre,
            self.eval_cfg.soft_nms,
            sigmas=self.meta.sigmas,
        )
        cat_id = dataset.coco.getCatIds()[0]
        results = coco_keypoint_results(kept, category_id=cat_id)
        if is_main_process():
            write_results(out_dir / "keypoints_val_results.json", results)
        metrics = evaluate_coco_keypoints(dataset.coco, results, sigmas=self.meta.sigmas, verbose=is_main_process())
        report = dataset.report or LoadReport(source="")
        if report.gt_boxes:
            logger.warning(GT_BOX_WARNING)
        if is_main_process():
            write_json(
                out_dir / "keypoints_val_summary.json",
                {
                    "metrics": metrics,
                    "boxes": "ground truth" if report.gt_boxes else "detections",
                    "warning": GT_BOX_WARNING if report.gt_boxes else None,
                    "num_instances": len(instances),
                    "num_results": len(results),
                    "skipped_missing_images": report.missing_images,
                },
                indent=2,
            )
        return {**metrics, "gt_boxes": float(report.gt_boxes)}

    def _evaluate_mpii(
        self, dataset: TopDownDataset, index: np.ndarray, preds: np.ndarray, out_dir: Path
    ) -> dict[str, float]:
        insts = [dataset.instances[i] for i in index]
        if self.data.mpii_gt_file:
            gt = load_mpii_gt_mat(self.data.path("mpii_gt_file"))
            ids = np.array([x.image_id for x in insts])
            if len(gt["gt"]) <= ids.max(initial=-1):
                raise DataError(
                    f"{self.data.mpii_gt_file} has {len(gt['gt'])} people but the annotation file "
                    f"has at least {ids.max() + 1}"
                )
            truth, visible, heads = gt["gt"][ids], gt["visible"][ids], gt["head_sizes"][ids]
            preds = preds + 1.0  # the .mat file is in MATLAB 1-based pixels
            protocol = "official (gt_valid.mat head boxes)"
        else:
            truth = np.stack([x.joints for x in insts]) if insts else np.zeros((0, 16, 2))
            visible = np.stack([x.joints_vis for x in insts]) if insts else np.zeros((0, 16))
            heads = head_sizes_from_joints(truth, visible)
            keep = ~np.isnan(heads)
            truth, visible, heads, preds = truth[keep], visible[keep], heads[keep], preds[keep]
            protocol = "fallback head size sqrt(2) x |head_top - upper_neck| (no gt_valid.mat given)"
            logger.warning("MPII PCKh with a %s; the official protocol needs data.mpii_gt_file", protocol)
        metrics = mpii_pckh(preds, truth, visible, heads)
        if is_main_process():
            write_json(
                out_dir / "mpii_val_predictions.json",
                {"image_ids": [x.image_id for x in insts], "preds": preds.tolist()},
            )
            write_json(out_dir / "mpii_val_summary.json", {"metrics": metrics, "protocol": protocol}, indent=2)
            logger.info("MPII PCKh@0.5 (%s): %s", protocol, {k: round(v, 2) for k, v in metrics.items()})
        return {**metrics, "PCKh": metrics["Mean"]}

    # ------------------------------------------------------------------------------------------ prediction

    PREDICT_OPTIONS = ("boxes", "detector", "box_thre", "kpt_thre", "overlays", "max_frames", "batch_size")

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list[Path]:
        """Poses on images, folders of images, videos and webcams (``webcam`` or ``webcam:N``).

        Options: ``boxes`` — a JSON file of person boxes (:func:`~hrnet.tasks.pose.inference.load_boxes`;
        an image without an entry has no persons); ``detector`` — a person detector (an RGB image array ->
        ``(xywh boxes, scores)``, e.g. :class:`~hrnet.tasks.detection.person.PersonDetector`) that finds the
        persons of video frames, and of images when no ``boxes`` file is given; with neither, each image
        (frame) is one person box. ``box_thre`` drops boxes scoring below it; ``kpt_thre`` (0.2) hides
        low-confidence keypoints in the overlays; ``overlays`` (true) writes ``<name>_pose.png`` /
        ``<name>_pose.mp4``; ``max_frames`` caps videos; ``batch_size`` is the number of person crops per
        forward pass. All predictions go to ``predictions.json`` (COCO keypoint results plus ``image``,
        ``box`` and ``box_score``).
        """
        unknown = [k for k in options if k not in self.PREDICT_OPTIONS]
        if unknown:
            hints = "".join(did_you_mean(k, self.PREDICT_OPTIONS) for k in unknown)
            raise ConfigError(
                f"unknown pose predict option(s) {unknown}.{hints} Known: {', '.join(self.PREDICT_OPTIONS)}"
            )
        images, videos = expand_inputs(inputs, videos=True)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        batch = int(options.get("batch_size") or self.cfg.eval.batch_size or self.cfg.train.batch_size)
        predictor = TopDownPredictor(
            model,
            self.codec,
            self.meta,
            flip_test=self.eval_cfg.flip_test,
            flip_shift=self.flip_shift,
            batch_size=batch,
            in_vis_thre=self.eval_cfg.in_vis_thre,
            oks_thre=self.eval_cfg.oks_thre,
        )
        table = load_boxes(options["boxes"]) if options.get("boxes") else None
        detector = options.get("detector")
        box_thre, kpt_thre = float(options.get("box_thre", 0.0)), float(options.get("kpt_thre", 0.2))
        overlays = bool(options.get("overlays", True))
        records: list[dict[str, Any]] = []
        written: list[Path] = []
        for start in range(0, len(images), 8):
            paths = images[start : start + 8]
            arrays = [read_image(p) for p in paths]
            if table is None and detector is not None:
                boxes, scores = zip(*(_above(*detector(a), box_thre) for a in arrays), strict=True)
            else:
                boxes, scores = zip(*(_person_boxes(table, p, box_thre) for p in paths), strict=True)
            for path, array, instances in zip(paths, arrays, predictor(arrays, boxes, scores), strict=True):
                records.extend(_records(instances, path.name, _image_id(path)))
                if overlays:
                    overlay = draw_poses(array, instances, self.meta, kpt_thre)
                    written.append(write_image(out_dir / f"{path.stem}_pose.png", overlay))
        for source in videos:
            video_out = out_dir / f"{_safe(source if isinstance(source, str) else source.stem)}_pose.mp4"
            frames = predict_video(
                predictor,
                video_source(source),
                video_out,
                detector=None if detector is None else lambda frame: _above(*detector(frame), box_thre),
                max_frames=options.get("max_frames"),
                kpt_thre=kpt_thre,
            )
            written.append(video_out)
            for n, instances in enumerate(frames):
                records.extend({**r, "frame": n} for r in _records(instances, str(source), n))
        write_json(out_dir / "predictions.json", records)
        return [out_dir / "predictions.json", *written]


def _unwrap(dataset: Dataset) -> Any:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def _cat(parts: list[np.ndarray], empty_shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(empty_shape, dtype=dtype)


def _person_boxes(
    table: dict[str, list] | None, path: Path, box_thre: float
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(boxes, scores) of an image: ``(None, None)`` = the whole image; an image missing from a box
    table has no persons."""
    if table is None:
        return None, None
    found = boxes_for_image(table, path)
    if found is None:
        return np.zeros((0, 4)), np.zeros(0)
    return _above(*found, box_thre)


def _above(boxes: np.ndarray, scores: np.ndarray, box_thre: float) -> tuple[np.ndarray, np.ndarray]:
    keep = np.asarray(scores) >= box_thre
    return np.asarray(boxes)[keep], np.asarray(scores)[keep]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _image_id(path: Path) -> int | str:
    return int(path.stem) if path.stem.isdigit() else path.stem


def _records(instances: list[dict[str, Any]], image: str, image_id: int | str) -> list[dict[str, Any]]:
    """COCO keypoint result records of one image's instances (plus its file name and person box)."""
    return [
        {
            "image": image,
            "image_id": image_id,
            "category_id": 1,
            "keypoints": [float(v) for v in np.asarray(x["keypoints"]).reshape(-1)],
            "score": float(x["score"]),
            "box": [float(v) for v in x["box"]],
            "box_score": float(x["box_score"]),
        }
        for x in instances
    ]
