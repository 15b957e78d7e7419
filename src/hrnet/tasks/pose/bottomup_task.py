"""The bottom-up pose task (``task: pose_bottomup``): HigherHRNet on whole images, people found by
associative-embedding grouping, no person detector and no boxes::

    task: pose_bottomup
    model: {name: pose_higherhrnet_w32}
    data: {root: data/coco, input_size: 512}      # format: coco | crowdpose
    loss: {push_factors: 0.001, pull_factors: 0.001}
    eval: {flip_test: true, scales: [1], detection_threshold: 0.1}

Training (:class:`~hrnet.tasks.pose.bottomup_data.BottomUpDataset`) uses the official random scale,
rotation, translation and flip with crowd masks; the loss is
:class:`~hrnet.tasks.pose.associative_embedding.MultiResolutionAELoss`; evaluation and prediction run
:class:`~hrnet.tasks.pose.bottomup.BottomUpPredictor` (flip and multi-scale test, grouping) and score with
COCO keypoint AP (CrowdPose: its AP easy/medium/hard).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ...engine.config import EvalConfig, StrictModel
from ...engine.distributed import all_gather_object, is_main_process
from ...engine.task import Task, register_task
from ...errors import ConfigError, did_you_mean
from ...io import write_json
from ...media import expand_inputs, read_image, video_source, write_image
from .associative_embedding import MultiResolutionAELoss
from .bottomup import BottomUpPredictor, coco_results
from .bottomup_data import BottomUpAugment, BottomUpDataset, bottomup_collate
from .config import KeypointFiles
from .evaluation import evaluate_coco_keypoints, evaluate_crowdpose_keypoints
from .grouping import GroupingParams
from .inference import predict_video
from .meta import KeypointMeta, resolve_meta
from .task import _image_id, _safe, _unwrap, model_overrides
from .visualize import draw_poses

__all__ = ["BottomUpDataConfig", "BottomUpAugmentSection", "BottomUpEvalConfig", "BottomUpLossConfig",
           "BottomUpPoseTask"]

logger = logging.getLogger(__name__)

_DEFAULT_PATHS = {
    "coco": {"train_ann": "annotations/person_keypoints_train2017.json", "train_images": "train2017",
             "val_ann": "annotations/person_keypoints_val2017.json", "val_images": "val2017"},
    "crowdpose": {"train_ann": "json/crowdpose_trainval.json", "train_images": "images",
                  "val_ann": "json/crowdpose_test.json", "val_images": "images"},
}


class BottomUpAugmentSection(StrictModel):
    """The official training augmentation (HigherHRNet ``DATASET`` values)."""

    max_rotation: float = Field(30.0, ge=0)
    min_scale: float = Field(0.75, gt=0)
    max_scale: float = Field(1.5, gt=0)
    scale_type: Literal["short", "long"] = "short"
    #: pixels per 200 pixels of scale
    max_translate: float = Field(40.0, ge=0)
    flip_prob: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _scales(self) -> BottomUpAugmentSection:
        if self.min_scale > self.max_scale:
            raise ValueError(f"min_scale {self.min_scale} is above max_scale {self.max_scale}")
        return self

    def to_augment(self) -> BottomUpAugment:
        return BottomUpAugment(**self.model_dump())


class BottomUpDataConfig(KeypointFiles):
    """The ``data:`` section of a bottom-up config. Relative paths are taken from ``root``."""

    format: Literal["coco", "crowdpose"] = "coco"
    #: side of the square training crop, and the short side of test images at scale 1
    input_size: int = Field(512, ge=32)
    #: Gaussian sigma of the heatmap targets, in output pixels at every resolution
    sigma: float = Field(2.0, gt=0)
    #: people per image the targets and the grouping keep (official ``MAX_NUM_PEOPLE``)
    max_num_people: int = Field(30, ge=1)
    augment: BottomUpAugmentSection = Field(default_factory=BottomUpAugmentSection)
    missing_images: Literal["error", "skip"] = "error"

    def path(self, key: str) -> Path:
        value = Path(getattr(self, key) or _DEFAULT_PATHS[self.format][key])
        return value if value.is_absolute() else self.root / value


class BottomUpEvalConfig(EvalConfig):
    """The ``eval:`` section: the official ``TEST`` settings of HigherHRNet."""

    #: test scales (official multi-scale: [2, 1, 0.5]); must include 1
    scales: list[float] = Field(default_factory=lambda: [1.0])
    #: resize heatmaps and tags to the image at scale 1 before grouping (official ``PROJECT2IMAGE``)
    project2image: bool = True
    #: which outputs' heatmaps are averaged (official ``WITH_HEATMAPS``); None: all
    heatmap_outputs: list[bool] | None = None
    detection_threshold: float = Field(0.1, ge=0)
    tag_threshold: float = Field(1.0, gt=0)
    use_detection_val: bool = True
    ignore_too_much: bool = False
    nms_kernel: int = Field(5, ge=1)
    adjust: bool = True
    refine: bool = True

    @model_validator(mode="after")
    def _checks(self) -> BottomUpEvalConfig:
        if 1.0 not in self.scales:
            raise ValueError(f"eval.scales {self.scales} must include 1 (its tags are the ones grouped)")
        if self.nms_kernel % 2 == 0:
            raise ValueError(f"eval.nms_kernel must be odd, got {self.nms_kernel}")
        return self


class BottomUpLossConfig(StrictModel):
    """The ``loss:`` section (official ``LOSS``); a list gives one value per model output."""

    with_heatmaps: list[bool] | bool = True
    heatmap_factors: list[float] | float = 1.0
    push_factors: list[float] | float = 1e-3
    pull_factors: list[float] | float = 1e-3
    ae_loss_type: Literal["exp", "max"] = "exp"


@register_task
class BottomUpPoseTask(Task):
    """Bottom-up multi-person pose (HigherHRNet + associative embedding) on COCO-format keypoint sets."""

    name = "pose_bottomup"
    DataConfig = BottomUpDataConfig
    EvalConfig = BottomUpEvalConfig
    LossConfig = BottomUpLossConfig
    main_metric = "AP"

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.meta: KeypointMeta = resolve_meta(self.data.meta or self.data.format)
        with torch.device("meta"):  # the model states its outputs; built without memory or weights
            model = self.build_model()
        strides = getattr(model, "output_strides", None)
        if strides is None:
            raise ConfigError(f"model {cfg.model.name!r} is not a bottom-up model (pose_higherhrnet_*)")
        size = self.data.input_size
        bad = [s for s in strides if size % s]
        if bad or size % 32:
            raise ConfigError(f"data.input_size={size} must be a multiple of 32 and of the output strides {strides}")
        self.output_sizes = [size // s for s in strides]
        self.with_ae = list(model.with_ae)
        self.tag_per_joint = bool(model.tag_per_joint)
        loss = self.loss_cfg
        try:
            self.criterion = MultiResolutionAELoss(self.meta.num_keypoints, self.with_ae, loss.with_heatmaps,
                                                   loss.heatmap_factors, loss.push_factors, loss.pull_factors,
                                                   loss.ae_loss_type)
        except ConfigError as e:
            raise ConfigError(f"loss: {e}") from None

    def build_model(self) -> nn.Module:
        from ...models import build_model

        return build_model(self.cfg.model.name, **model_overrides(self.cfg, self.meta))

    def build_dataset(self, split: str) -> BottomUpDataset:
        d = self.data
        ann, images = d.split_files(split)
        dataset = BottomUpDataset(ann, images, self.meta, train=split == "train",
                                  input_size=d.input_size, output_sizes=self.output_sizes, sigma=d.sigma,
                                  max_people=d.max_num_people, augment=d.augment.to_augment(),
                                  tag_per_joint=self.tag_per_joint, missing_images=d.missing_images)
        logger.info("pose_bottomup %s: %d images (%s)", split, len(dataset), ann)
        return dataset

    def collate_fn(self) -> Any:
        return bottomup_collate

    def compute_loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, float]]:
        """The official multi-resolution heatmap + push/pull loss; its parts are logged."""
        outputs = [o.float() for o in model(batch["image"])]
        losses = self.criterion(outputs, batch["heatmaps"], batch["masks"], batch["joints"])
        logged = {}
        for name in ("heatmaps", "push", "pull"):
            parts = [t for t in getattr(losses, name) if t is not None]
            if parts:
                logged[name] = float(sum(t.detach() for t in parts))
        return losses.total, logged

    # ------------------------------------------------------------------------------------------ inference

    @property
    def grouping(self) -> GroupingParams:
        e = self.eval_cfg
        return GroupingParams(max_num_people=self.data.max_num_people, detection_threshold=e.detection_threshold,
                              tag_threshold=e.tag_threshold, use_detection_val=e.use_detection_val,
                              ignore_too_much=e.ignore_too_much, nms_kernel=e.nms_kernel, adjust=e.adjust,
                              refine=e.refine)

    def predictor(self, model: nn.Module) -> BottomUpPredictor:
        """The test recipe of the ``eval:`` section around ``model``."""
        e = self.eval_cfg
        return BottomUpPredictor(model, self.meta, self.data.input_size, e.scales, e.flip_test, e.project2image,
                                 self.grouping, e.heatmap_outputs)

    def evaluate(self, model: nn.Module, loader: DataLoader, out_dir: Path) -> dict[str, float]:
        dataset = _unwrap(loader.dataset)
        predictor = self.predictor(model)
        results = []
        for batch in loader:
            for item in batch:
                instances = predictor.predict_one(item["image"], item["image_id"])
                results.extend(coco_results(instances, dataset.category_id))
        results = [r for part in all_gather_object(results) for r in part]
        if not is_main_process():
            return {}
        write_json(Path(out_dir) / "keypoints_results.json", results)
        if self.data.format == "crowdpose":
            return evaluate_crowdpose_keypoints(dataset.coco, results, self.meta.sigmas)
        stats = evaluate_coco_keypoints(dataset.coco, results, self.meta.sigmas)
        return stats

    PREDICT_OPTIONS = ("kpt_thre", "overlays", "max_frames")

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list[Path]:
        """Everyone's pose in images, folders and videos, with no boxes and no detector.

        Options: ``kpt_thre`` (0.2) hides low-confidence keypoints in the overlays; ``overlays`` (true)
        writes ``<name>_pose.png`` / ``<name>_pose.mp4``; ``max_frames`` caps videos. All people go to
        ``predictions.json`` (COCO keypoint results plus ``image``, the keypoints' ``box`` and the ``tags``).
        """
        if "boxes" in options or "detector" in options:
            raise ConfigError("a bottom-up model (task: pose_bottomup) finds the people itself: it takes no person "
                              "boxes and no detector")
        unknown = [k for k in options if k not in self.PREDICT_OPTIONS]
        if unknown:
            hints = "".join(did_you_mean(k, self.PREDICT_OPTIONS) for k in unknown)
            raise ConfigError(f"unknown pose_bottomup predict option(s) {unknown}.{hints} Known: "
                              f"{', '.join(self.PREDICT_OPTIONS)}")
        images, videos = expand_inputs(inputs, videos=True)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        predictor = self.predictor(model)
        kpt_thre = float(options.get("kpt_thre", 0.2))
        overlays = bool(options.get("overlays", True))
        records: list[dict[str, Any]] = []
        written: list[Path] = []
        for path in images:
            array = read_image(path)
            instances = predictor.predict_one(array, _image_id(path))
            records.extend(_records(instances, path.name))
            if overlays:
                written.append(write_image(out_dir / f"{path.stem}_pose.png",
                                           draw_poses(array, instances, self.meta, kpt_thre, draw_boxes=False)))
        for source in videos:
            video_out = out_dir / f"{_safe(source if isinstance(source, str) else source.stem)}_pose.mp4"
            frames = predict_video(predictor, video_source(source), video_out, max_frames=options.get("max_frames"),
                                   kpt_thre=kpt_thre)
            written.append(video_out)
            for n, instances in enumerate(frames):
                records.extend({**r, "image_id": n, "frame": n} for r in _records(instances, str(source)))
        write_json(out_dir / "predictions.json", records)
        return [out_dir / "predictions.json", *written]


def _records(instances: list[dict[str, Any]], image: str) -> list[dict[str, Any]]:
    return [{**r, "image": image, "tags": [[float(v) for v in row] for row in inst["tags"]]}
            for r, inst in zip(coco_results(instances), instances, strict=True)]
