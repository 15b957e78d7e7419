"""``hrnet.Inferencer``: one object that runs any task's model, in any deploy path, on any user input.

    pose = hrnet.Inferencer("configs/pose/coco/w32_256x192.yaml", weights="w32.pt", path="onnxruntime",
                            detector="torchvision:fasterrcnn_resnet50_fpn_v2", detector_weights="frcnn.pt")
    [result] = pose("photo.jpg")              # one image -> a list of one result
    for result in pose("clip.mp4"):           # videos, webcams (0, "webcam:1"), folders, lists -> a generator
        print(result.to_json())
    overlay = result.draw(frame)              # or pose.draw(frame, result)

Prediction reuses the tasks' own code (pose: :meth:`PoseTask.predictor`, i.e. ``TopDownPredictor`` and
``PoseDecoder``; segmentation: :meth:`SegmentationTask.segment`; detection: :func:`detect`;
classification: :meth:`ClassificationTask.classify`); only the network forward runs in ``path``
(:func:`~hrnet.inference.deployed.deploy_task_model`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine.build import resolve_device
from ..engine.catalog import find_config, list_configs
from ..engine.config import ExperimentConfig, load_config, read_yaml_tree
from ..engine.inference import prepare_model
from ..errors import ConfigError, DataError, did_you_mean
from ..media import VIDEO_SUFFIXES, expand_inputs, is_image_file, read_image, video_fps
from ..models.registry import list_models
from ..tasks.detection.inference import detect
from ..tasks.pose.inference import Detector, boxes_for_image, load_boxes
from .deployed import deploy_person_detector, deploy_task_model
from .results import ClassificationResult, DetectionResult, PoseResult, Result, SegmentationResult
from .video import open_frames, webcam_index

__all__ = ["Inferencer", "Input", "load_experiment_config"]

#: what an Inferencer takes: an RGB uint8 (H, W, 3) array, an image/video file or folder, a webcam index
#: (int or ``"webcam:N"``), or a list of those
Input = np.ndarray | str | os.PathLike | int | Sequence[Any]

#: each task's prediction options and their defaults
OPTIONS: dict[str, dict[str, Any]] = {
    "pose": {"boxes": None, "box_thre": 0.0, "kpt_thre": 0.2, "show_scores": False, "detect_every": 1,
             "track": True, "smooth": False},
    "segmentation": {"alpha": 0.5},
    "detection": {"score_threshold": 0.5},
    "classification": {"topk": 5, "classes": None},
}


def load_experiment_config(config_or_preset: str | os.PathLike | ExperimentConfig,
                           overrides: Iterable[str] = ()) -> ExperimentConfig:
    """An experiment config from a config file, a packaged config's name, or a model preset name (the
    packaged config that trains that preset as it is, e.g. ``pose_hrnet_w32`` -> ``pose/coco/hrnet_w32_256x192``)."""
    if isinstance(config_or_preset, ExperimentConfig):
        return config_or_preset
    name = str(config_or_preset)
    if name in list_models() and not Path(name).exists():
        found = []  # (modified, ablation, from scratch, name): the plainest config of the preset first
        for entry in list_configs():
            model = read_yaml_tree(entry.path).get("model") or {}
            if model.get("name") == name:
                found.append((bool(model.get("overrides")), entry.name.startswith("ablations/"),
                              "scratch" in entry.name, entry.name, entry.path))
        if found:
            return load_config(min(found)[-1], overrides)
        raise ConfigError(f"model preset {name!r} has no packaged experiment config (which says its task, data "
                          "and test recipe); give a config file instead")
    try:
        find_config(name)
    except ConfigError:
        raise ConfigError(f"{name!r} is neither a config file, a packaged config nor a model preset."
                          f"{did_you_mean(name, [e.name for e in list_configs()] + list_models())}") from None
    return load_config(name, overrides)


class Inferencer:
    """The model of ``config_or_preset`` with ``weights``, on ``device``, its forward in deploy ``path``
    (``eager``, ``compile``, ``compile_bf16``, ``onnxruntime``, ``onnxruntime_int8``, CUDA paths; see
    :mod:`hrnet.deploy.paths`).

    Calling it on one image (an RGB ``uint8`` array or an image file) returns a list of one result; on
    anything else (a folder, a video file, a webcam index or ``"webcam:N"``, a list of inputs) it returns
    a generator of results, one per image or frame, in input order. Results are
    :class:`~hrnet.inference.results.PoseResult`, ``SegmentationResult``, ``DetectionResult`` or
    ``ClassificationResult``, with ``to_json()`` and ``draw(image)``.

    Pose: an image file with entries in ``boxes=FILE`` (a COCO detection results file) has those persons
    (none without entries); otherwise ``detector`` finds them: a detection config or preset (e.g.
    ``faster_rcnn_hrnetv2p_w32``) or a torchvision detector (``torchvision:fasterrcnn_resnet50_fpn_v2``)
    with ``detector_weights`` (a file, or torchvision's ``DEFAULT``), keeping persons scoring at least
    ``detector_threshold``, the best ``detector_max_persons``, run in ``detector_path`` (``eager``, or
    ``onnxruntime``: exported and run in fp32 by ONNX Runtime, the same persons about twice as fast on a CPU);
    or any callable ``image -> (xywh boxes, scores)``. With neither, the whole image is one person. int8 paths
    calibrate on ``calibration_images`` train-split images of the config. Task options (``OPTIONS``): pose
    ``boxes``, ``box_thre``, ``kpt_thre``, ``show_scores`` (drawing), and for videos with a detector
    ``detect_every`` (1: every frame; in between the poses carry the boxes), ``track`` (true: ids stable across
    frames), ``smooth`` (One-Euro keypoint smoothing); segmentation ``alpha``; detection ``score_threshold``;
    classification ``topk``, ``classes``.
    """

    def __init__(self, config_or_preset: str | os.PathLike | ExperimentConfig, weights: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu", path: str = "eager", detector: str | Detector | None = None,
                 detector_weights: str | os.PathLike | None = None, detector_threshold: float = 0.5,
                 detector_max_persons: int | None = None, detector_path: str = "eager", calibration_images: int = 64,
                 batch_size: int | None = None, overrides: Iterable[str] = (), **options: Any) -> None:
        cfg = load_experiment_config(config_or_preset, overrides)
        if weights is None and cfg.model.init_from is not None:  # no training start point: the model as built
            cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"init_from": None})})
        self.cfg = cfg
        self.device = resolve_device(str(device))
        self.path = path
        self.task, model = prepare_model(self.cfg, weights, self.device)
        self.options = self._check_options(options)
        self.detector = self._detector(detector, detector_weights, detector_threshold, detector_max_persons)
        if self.detector is not None:
            self.detector = deploy_person_detector(self.detector, detector_path)
        self.model = deploy_task_model(self.task, model, path, calibration_images)
        self.batch_size = batch_size
        self._boxes = load_boxes(self.options["boxes"], self.task.category_id) if self.options.get("boxes") else None
        self._predictor = self.task.predictor(self.model, batch_size) if self.task.name == "pose" else None
        self._class_names = self._classification_names() if self.task.name == "classification" else None

    # ------------------------------------------------------------------------------------------ set-up

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        known = OPTIONS[self.task.name]
        unknown = [key for key in options if key not in known]
        if unknown:
            hints = "".join(did_you_mean(key, known) for key in unknown)
            raise ConfigError(f"unknown {self.task.name} option(s) {unknown}.{hints} Known: {', '.join(known)}")
        return {**known, **options}

    def _detector(self, detector: str | Detector | None, weights: str | os.PathLike | None, threshold: float,
                  max_persons: int | None) -> Detector | None:
        if detector is None:
            if weights is not None:
                raise ConfigError("detector_weights needs a detector (the detection config or preset they belong to)")
            return None
        if self.task.name != "pose":
            raise ConfigError(f"a person detector serves top-down pose, but this is a {self.task.name!r} config")
        if callable(detector):
            return detector
        from ..tasks.detection.person import load_person_detector  # detection models: only when asked for

        if weights is None:
            raise ConfigError(f"detector {detector!r} needs detector_weights (a detector without trained weights "
                              "finds no persons)")
        return load_person_detector(detector, weights, threshold, self.device, max_persons=max_persons)

    def _classification_names(self) -> list[str] | None:
        from ..tasks.classification.data import read_class_names

        classes = self.options.get("classes")
        names = read_class_names(classes) if classes is not None else self.task.class_names
        num_classes = getattr(self.model, "num_classes", None)
        if names is not None and num_classes is not None and len(names) != num_classes:
            raise DataError(f"{len(names)} class names are given but the model predicts {num_classes} classes")
        return names

    # ------------------------------------------------------------------------------------------ running

    def __call__(self, inputs: Input) -> list[Result] | Iterator[Result]:
        if isinstance(inputs, np.ndarray):
            return self.predict_images([inputs])
        if isinstance(inputs, (str, os.PathLike)) and is_image_file(inputs):
            return self.predict_images([read_image(inputs)], [Path(inputs)])
        return self.stream(inputs)

    def stream(self, inputs: Input, batch: int = 8) -> Iterator[Result]:
        """Results of every image and frame of ``inputs`` (see the class), as they are computed."""
        items = [inputs] if isinstance(inputs, (np.ndarray, str, os.PathLike, int)) else list(inputs)
        arrays = 0
        for item in items:
            if isinstance(item, np.ndarray):
                yield from self.predict_images([item], ids=[arrays])
                arrays += 1
            elif isinstance(item, int) or str(item).startswith("webcam") or \
                    str(item).lower().endswith(VIDEO_SUFFIXES):
                yield from self.predict_video(item)
            else:
                files = expand_inputs([item], recursive=self.task.name == "classification")[0]
                for start in range(0, len(files), batch):
                    chunk = files[start:start + batch]
                    yield from self.predict_images([read_image(f) for f in chunk], chunk)

    def predict_video(self, source: str | os.PathLike | int, max_frames: int | None = None) -> Iterator[Result]:
        """Results of each frame of a video file or webcam (an index, or ``"webcam"`` / ``"webcam:N"``)."""
        return (result for _, result in self.video(source, max_frames))

    def video(self, source: str | os.PathLike | int,
              max_frames: int | None = None) -> Iterator[tuple[np.ndarray, Result]]:
        """``(frame, result)`` of each frame of a video file or webcam, as they are decoded (in a background
        thread, :func:`~hrnet.inference.video.open_frames`) and predicted."""
        predict = self.video_predictor(source)
        with open_frames(source) as frames:
            for count, frame in enumerate(frames):
                if max_frames is not None and count >= max_frames:
                    break
                yield frame, predict([frame])[0]

    def video_predictor(self, source: str | os.PathLike | int) -> Callable[[list[np.ndarray]], list[Result]]:
        """``predict(frames) -> results`` for the consecutive frames of one video, numbered from 0 and named
        after ``source``: what holds a video's state from frame to frame (one per video)."""
        label, count = frames_label(source), itertools.count()
        if self.task.name == "pose" and self.detector is not None:
            return self._pose_video(source, label)

        def predict(frames: list[np.ndarray]) -> list[Result]:
            numbers = [next(count) for _ in frames]
            return self.predict_images(frames, ids=numbers, source=label, frames=numbers)

        return predict

    def predict_images(self, images: Sequence[np.ndarray], files: Sequence[Path] | None = None,
                       ids: Sequence[int | str] | None = None, source: str | None = None,
                       frames: Sequence[int] | None = None) -> list[Result]:
        """Results of RGB ``uint8`` images: ``files`` they were read from (ids, box files), or the video
        ``source`` and ``frames`` indices they are frames of."""
        for image in images:
            if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
                    and image.dtype == np.uint8):
                raise DataError(f"an image must be an RGB uint8 (H, W, 3) array, got "
                                f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
        files = list(files) if files is not None else [None] * len(images)
        ids = list(ids) if ids is not None else [_image_id(f, i) for i, f in enumerate(files)]
        frames = list(frames) if frames is not None else [None] * len(images)
        headers = [{"image_id": i, "height": a.shape[0], "width": a.shape[1],
                    "file": source if source is not None else (str(f) if f is not None else None), "frame": n}
                   for i, a, f, n in zip(ids, images, files, frames, strict=True)]
        return getattr(self, f"_{self.task.name}")(list(images), files, headers)

    def draw(self, image: np.ndarray, result: Result, **options: Any) -> np.ndarray:
        """A copy of ``image`` with ``result`` drawn (the task's overlay)."""
        return result.draw(image, **options)

    # ------------------------------------------------------------------------------------------ per task

    def _pose(self, images: list[np.ndarray], files: list[Path | None], headers: list[dict]) -> list[Result]:
        persons = [self._persons(image, file) for image, file in zip(images, files, strict=True)]
        poses = self._predictor(images, [b for b, _ in persons], [s for _, s in persons])
        meta, kpt_thre, show = self.task.meta, float(self.options["kpt_thre"]), bool(self.options["show_scores"])
        return [PoseResult.from_instances(instances, meta, kpt_thre=kpt_thre, show_scores=show, **header)
                for instances, header in zip(poses, headers, strict=True)]

    def _persons(self, image: np.ndarray, file: Path | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """An image's person boxes (xywh) and scores: its entries in the ``boxes`` file (none: no persons),
        else the detector's, else ``(None, None)``, the whole image; boxes under ``box_thre`` dropped."""
        if self._boxes is not None and file is not None:
            found = boxes_for_image(self._boxes, file)
            boxes, scores = found if found is not None else (np.zeros((0, 4)), np.zeros(0))
        elif self.detector is not None:
            boxes, scores = self.detector(image)
        else:
            return None, None
        keep = np.asarray(scores).reshape(-1) >= float(self.options["box_thre"])
        return np.asarray(boxes).reshape(-1, 4)[keep], np.asarray(scores).reshape(-1)[keep]

    def _pose_video(self, source: str | os.PathLike | int, label: str) -> Callable[[list[np.ndarray]], list[Result]]:
        """Persons of a video found by the detector every ``detect_every`` frames (carried by their poses in
        between), tracked (``track``: ids stable across frames) and smoothed (``smooth``: One-Euro)."""
        from .pose_video import PoseVideoPipeline
        from .smoothing import KeypointSmoother
        from .tracking import Tracker

        o = self.options
        if int(o["detect_every"]) < 1:
            raise ConfigError(f"detect_every must be at least 1, got {o['detect_every']}")
        if o["smooth"] and not o["track"]:
            raise ConfigError("smooth=true follows each person by its track id: it needs track=true")
        index = webcam_index(source)
        smoother = KeypointSmoother(video_fps(index if index is not None else source)) if o["smooth"] else None
        pipeline = PoseVideoPipeline(self._predictor, self.task.meta, self.detector,
                                     detect_every=int(o["detect_every"]), box_thre=float(o["box_thre"]),
                                     tracker=Tracker("pose", sigmas=self.task.meta.sigmas) if o["track"] else None,
                                     smoother=smoother, draw_kpt_thre=float(o["kpt_thre"]), source=label)

        def predict(frames: list[np.ndarray]) -> list[Result]:
            results = pipeline(frames)
            for result in results:
                result.show_scores = bool(o["show_scores"])
            return results

        return predict

    def _segmentation(self, images: list[np.ndarray], files: list, headers: list[dict]) -> list[Result]:
        task = self.task
        return [SegmentationResult(labels=task.segment(self.model, image), class_names=list(task.classes),
                                   palette=task.palette, ignore_index=task.ignore_index,
                                   alpha=float(self.options["alpha"]), **header)
                for image, header in zip(images, headers, strict=True)]

    def _detection(self, images: list[np.ndarray], files: list, headers: list[dict]) -> list[Result]:
        names, threshold = self.task.category_names(), float(self.options["score_threshold"])
        step = self.batch_size or 1
        outputs = [out for i in range(0, len(images), step) for out in detect(self.model, images[i:i + step])]
        return [DetectionResult.from_output(output, names, threshold, **header)
                for output, header in zip(outputs, headers, strict=True)]

    def _classification(self, images: list[np.ndarray], files: list, headers: list[dict]) -> list[Result]:
        probabilities, indices = self.task.classify(self.model, images, int(self.options["topk"]))
        names = self._class_names
        return [ClassificationResult(indices=idx.numpy(), names=[names[i] if names else str(i) for i in idx.tolist()],
                                     probabilities=p.double().numpy(), **header)
                for p, idx, header in zip(probabilities, indices, headers, strict=True)]

    def __repr__(self) -> str:
        return f"Inferencer(task={self.task.name!r}, model={self.cfg.model.name!r}, path={self.path!r}, " \
               f"device={str(self.device)!r})"


def frames_label(source: str | os.PathLike | int) -> str:
    """What results name a video source by (their ``file``): the path, or ``webcam:N``."""
    index = webcam_index(source)
    return f"webcam:{index}" if index is not None else str(source)


def _image_id(file: Path | None, index: int) -> int | str:
    """A file's COCO-style id (its stem, as a number when it is one); an array's position."""
    if file is None:
        return index
    return int(file.stem) if file.stem.isdigit() else file.stem
