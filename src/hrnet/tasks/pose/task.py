"""The pose task for the engine: datasets, loss and training accuracy, evaluation, prediction.

Its config sections are in :mod:`~hrnet.tasks.pose.config`; evaluation is a
:class:`~hrnet.tasks.pose.evaluation.PoseEvaluator` and prediction a
:class:`~hrnet.tasks.pose.inference.TopDownPredictor`, which share one decode -> rescore -> NMS step
(:class:`~hrnet.tasks.pose.postprocess.PoseDecoder`) built from the ``eval:`` section.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from ...engine.task import Task, register_task
from ...errors import ConfigError, DataError, did_you_mean
from ...io import read_structured, write_json
from ...media import expand_inputs, read_image, video_source, write_image
from .codecs import HeatmapCodec, build_codec
from .config import AugmentSection, CodecConfig, PoseDataConfig, PoseEvalConfig, PoseLossConfig
from .data import TopDownDataset, load_coco_instances, load_mpii_instances
from .evaluation import GT_BOX_WARNING, PoseEvaluator, accuracy
from .inference import TopDownPredictor, boxes_for_image, infer_heatmaps, load_boxes, predict_video
from .loss import build_loss
from .meta import KeypointMeta, resolve_meta
from .postprocess import PoseDecoder
from .visualize import draw_poses

__all__ = ["CodecConfig", "AugmentSection", "PoseDataConfig", "PoseEvalConfig", "PoseLossConfig", "PoseTask",
           "GT_BOX_WARNING"]

logger = logging.getLogger(__name__)


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
        self.meta: KeypointMeta = resolve_meta(self.data.meta or self.data.format)
        if self.data.format == "mpii":
            self.main_metric = "PCKh"
        self.codec: HeatmapCodec = self._build_codec()  # builds the model: a num_joints off the meta fails here
        self.criterion = build_loss(self.loss_cfg.name, self.loss_cfg.use_target_weight, self.loss_cfg.topk)

    # ------------------------------------------------------------------------------------------ building

    def _build_codec(self) -> HeatmapCodec:
        with torch.device("meta"):  # the model states its geometry; built without memory or weights
            model = self.build_model()
        stride, multiple = model.output_stride, model.size_divisibility
        w, h = self.data.input_size
        if w % stride or h % stride:
            raise ConfigError(
                f"data.input_size={list(self.data.input_size)} must be divisible by the model's output stride {stride}"
            )
        if w % multiple or h % multiple:
            raise ConfigError(
                f"data.input_size={list(self.data.input_size)}: both sides must be multiples of {multiple} for a "
                "model that fuses with nearest upsampling (the official pose models); e.g. [192, 256] or [96, 128]"
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

        return build_model(self.cfg.model.name, **model_overrides(self.cfg, self.meta))

    def build_dataset(self, split: str) -> TopDownDataset:
        d = self.data
        ann, images = d.split_files(split)
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
        """The heatmap loss (summed over the outputs of a multi-output model) and, logged beside it as
        the official training does, :func:`~hrnet.tasks.pose.evaluation.accuracy` of the last output."""
        outputs = model(batch["image"])
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        target, weight = batch["target"], batch["target_weight"]
        loss = sum(self.criterion(out.float(), target, weight) for out in outputs)
        _, acc, _, _ = accuracy(outputs[-1].detach().float().cpu().numpy(), target.detach().cpu().numpy())
        return loss, {"acc": acc}

    # ------------------------------------------------------------------------------------------ evaluation

    @property
    def flip_shift(self) -> bool:
        shift = self.eval_cfg.shift_heatmap
        return self.codec.flip_shift if shift is None else shift

    @property
    def decoder(self) -> PoseDecoder:
        """Decoding, rescoring and (soft) OKS-NMS with the ``eval:`` settings: evaluation's and prediction's."""
        e = self.eval_cfg
        return PoseDecoder(self.codec, self.meta.sigmas, e.in_vis_thre, e.oks_thre, e.soft_nms)

    @functools.cached_property
    def category_id(self) -> int:
        """The keypoint category of the dataset (its annotation file's first), which results are written
        with; 1 (COCO's person) for MPII or when no annotation file is at hand."""
        if self.data.format != "coco":
            return 1
        for key in ("val_ann", "train_ann"):
            path = self.data.path(key)
            if path is not None and path.is_file():
                categories = read_structured(path, "keypoint annotation file", DataError).get("categories")
                if categories:
                    return int(sorted(c["id"] for c in categories)[0])
        return 1

    def predict_heatmaps(self, model: nn.Module, images: Tensor) -> Tensor:
        """The network's heatmaps for a batch of crops, averaged with the flip test when enabled."""
        return infer_heatmaps(model, images, self.meta.flip_pairs, self.eval_cfg.flip_test, self.flip_shift)

    def build_evaluator(self, dataset: TopDownDataset, out_dir: Path) -> PoseEvaluator:
        mpii_gt = self.data.path("mpii_gt_file") if self.data.mpii_gt_file else None
        return PoseEvaluator(dataset, self.decoder, out_dir, mpii=self.data.format == "mpii", mpii_gt=mpii_gt)

    def evaluate(self, model: nn.Module, loader: DataLoader, out_dir: Path) -> dict[str, float]:
        evaluator = self.build_evaluator(_unwrap(loader.dataset), Path(out_dir))
        for batch in loader:
            evaluator.process(batch, self.predict_heatmaps(model, batch["image"]))
        return evaluator.evaluate()

    # ------------------------------------------------------------------------------------------ prediction

    PREDICT_OPTIONS = ("boxes", "detector", "box_thre", "kpt_thre", "overlays", "max_frames", "batch_size")

    def predictor(self, model: nn.Module, batch_size: int | None = None) -> TopDownPredictor:
        """The top-down predictor of ``model`` with the ``eval:`` test-time recipe (flip test, decoding,
        rescoring, OKS-NMS); ``batch_size`` person crops per forward pass (default: the config's)."""
        batch = int(batch_size or self.cfg.eval.batch_size or self.cfg.train.batch_size)
        e = self.eval_cfg
        return TopDownPredictor(model, self.codec, self.meta, flip_test=e.flip_test, flip_shift=self.flip_shift,
                                batch_size=batch, in_vis_thre=e.in_vis_thre, oks_thre=e.oks_thre,
                                soft_nms=e.soft_nms)

    def predict(self, model: nn.Module, inputs: list[Path], out_dir: Path, **options: Any) -> list[Path]:
        """Poses on images, folders of images, videos and webcams (``webcam`` or ``webcam:N``).

        Options: ``boxes`` — a JSON file of person boxes (:func:`~hrnet.tasks.pose.inference.load_boxes`;
        an image without an entry has no persons); ``detector`` — a person detector (an RGB image array ->
        ``(xywh boxes, scores)``, e.g. :class:`~hrnet.tasks.detection.person.PersonDetector`) that finds the
        persons of video frames, and of images when no ``boxes`` file is given; with neither, each image
        (frame) is one person box. ``box_thre`` drops boxes scoring below it; ``kpt_thre`` (0.2) hides
        low-confidence keypoints in the overlays; ``overlays`` (true) writes ``<name>_pose.png`` /
        ``<name>_pose.mp4``; ``max_frames`` caps videos; ``batch_size`` is the number of person crops per
        forward pass. All predictions go to ``predictions.json`` (COCO keypoint results, with the dataset's
        :attr:`category_id`, plus ``image``, ``box`` and ``box_score``).
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
        predictor = self.predictor(model, options.get("batch_size"))
        table = load_boxes(options["boxes"], self.category_id) if options.get("boxes") else None
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
                records.extend(_records(instances, path.name, _image_id(path), self.category_id))
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
                records.extend({**r, "frame": n} for r in _records(instances, str(source), n, self.category_id))
        write_json(out_dir / "predictions.json", records)
        return [out_dir / "predictions.json", *written]


def model_overrides(cfg: Any, meta: KeypointMeta) -> dict[str, Any]:
    """``cfg.model.overrides`` with ``num_joints`` from the keypoint meta (a different one is an error)."""
    overrides = dict(cfg.model.overrides)
    joints = overrides.setdefault("num_joints", meta.num_keypoints)
    if joints != meta.num_keypoints:
        raise ConfigError(
            f"model.overrides.num_joints={joints} but the keypoint meta {meta.name!r} has "
            f"{meta.num_keypoints} keypoints"
        )
    return overrides


def _unwrap(dataset: Dataset) -> Any:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


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


def _records(instances: list[dict[str, Any]], image: str, image_id: int | str, category_id: int
             ) -> list[dict[str, Any]]:
    """COCO keypoint result records of one image's instances (plus its file name and person box)."""
    return [
        {
            "image": image,
            "image_id": image_id,
            "category_id": category_id,
            "keypoints": [float(v) for v in np.asarray(x["keypoints"]).reshape(-1)],
            "score": float(x["score"]),
            "box": [float(v) for v in x["box"]],
            "box_score": float(x["box_score"]),
        }
        for x in instances
    ]


from . import bottomup_task  # noqa: E402,F401  (registers pose_bottomup, which reuses this module's helpers)
