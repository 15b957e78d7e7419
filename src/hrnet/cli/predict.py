"""``hrnet predict CONFIG --weights W INPUTS... --out DIR [--path P]``: run a trained model on your own files.

A thin layer over :class:`hrnet.Inferencer`: the outputs are named as :mod:`hrnet.inference.outputs`
says (``<stem>_<task>.png``, ``predictions.json``, ``<stem>_<task>.mp4`` / ``.jsonl`` for videos) for
every task, and ``--path`` runs the network in any deploy path.

For top-down pose, ``--detector`` names a detection config, preset or torchvision detector whose person
detections become the person boxes: for images they are written to ``DIR/person_boxes.json`` (a box file)
and the pose model reads them from there, as it would a box file given with ``--option boxes=FILE``; video
frames go through the detector as they are read.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.build import build_task, resolve_device
from ..engine.config import ExperimentConfig
from ..engine.inference import predict
from ..errors import ConfigError, DataError
from ..inference import OPTIONS, ClassificationResult, Inferencer
from ..inference.deployed import deploy_person_detector
from ..inference.outputs import write_predictions
from ..io import write_json
from ..media import expand_inputs, image_files, image_truncation, is_image_file
from ..tasks.classification.task import format_prediction
from ..tasks.pose.inference import detected_box_records
from .common import add_config_arguments, add_path_arguments, add_threads_argument, load_experiment, parse_key_value

if TYPE_CHECKING:
    from ..tasks.detection.person import PersonDetector


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict",
        help="run a model on images, folders or videos",
        description=(
            "Run the model of CONFIG with WEIGHTS on INPUTS (what a task accepts: images, folders, videos) "
            "and write its outputs (JSON, overlays) to --out."
        ),
    )
    add_config_arguments(parser, positional_overrides=False)
    parser.add_argument("--weights", type=Path, required=True, metavar="W", help="weights to use")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders or videos")
    add_threads_argument(parser)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--option",
        dest="options",
        action="append",
        type=parse_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="prediction option, e.g. --option boxes=dets.json (repeatable): pose boxes, box_thre, kpt_thre, "
        "show_scores, and for videos with --detector detect_every, track, smooth; segmentation alpha; "
        "detection score_threshold; classification topk, classes; any task overlays (true), max_frames, "
        "batch_size",
    )
    add_path_arguments(parser)
    detector = parser.add_argument_group("person detector (pose configs)")
    detector.add_argument(
        "--detector",
        metavar="NAME",
        help="detection config (YAML), detector preset (e.g. faster_rcnn_hrnetv2p_w32, COCO) or torchvision "
        "COCO detector (torchvision:NAME, e.g. torchvision:fasterrcnn_resnet50_fpn_v2) whose person boxes the "
        "pose model runs on; without it: --option boxes=FILE, or the whole image",
    )
    detector.add_argument(
        "--detector-weights",
        type=Path,
        metavar="W",
        help="the detector's weights (required): a file, or for torchvision:NAME one of torchvision's weights "
        "(DEFAULT, COCO_V1; downloaded by torchvision)",
    )
    detector.add_argument(
        "--detector-threshold", type=float, default=0.5, metavar="S", help="keep persons scoring >= S (0.5)"
    )
    detector.add_argument(
        "--detector-max-persons", type=int, metavar="N", help="keep the N best-scoring persons per image (all)"
    )
    detector.add_argument(
        "--detector-path", choices=("eager", "onnxruntime"), default="eager",
        help="how the detector runs: eager PyTorch (default) or exported to ONNX Runtime in fp32 (the same "
        "persons, about twice as fast on a CPU)")
    parser.set_defaults(run=run, prog=parser.prog)
    return parser


#: ``--option`` keys every task takes (the writer's and the batching's)
WRITER_OPTIONS = ("overlays", "max_frames", "batch_size")
#: what ``--option`` must not carry: the person detector has options of its own
DETECTOR_OPTIONS = ("detector", "detector_weights", "detector_threshold", "detector_max_persons", "detector_path")


def check_inputs(inputs: list[str], options: dict) -> None:
    """Refuse ``--option detector=...`` and truncated image files, naming them, before any work."""
    misplaced = [name for name in DETECTOR_OPTIONS if name in options]
    if misplaced:
        flags = " ".join(f"--{name.replace('_', '-')} ..." for name in misplaced)
        raise ConfigError(f"--option {misplaced[0]}=... is not a prediction option: give the person detector "
                          f"with its own options ({flags}), e.g. --detector faster_rcnn_hrnetv2p_w32 "
                          "--detector-weights DET.pt")
    # only image files are checked: videos, webcams and a task's own input files are read by the task
    images = [f for item in map(Path, inputs)
              for f in (image_files(item) if item.is_dir() else [item] if is_image_file(item) else [])]
    for image in images:
        reason = image_truncation(image) if image.is_file() else None  # a missing file is the reader's to report
        if reason:
            raise DataError(f"image {image} is truncated: {reason} (an interrupted copy or download?); "
                            "replace the file or leave it out")


def run(args: argparse.Namespace) -> int:
    cfg = load_experiment(args)
    options = dict(args.options)
    check_inputs(args.inputs, options)
    if cfg.task not in OPTIONS:  # a task registered by a user: its own Task.predict writes its outputs
        if args.path != "eager" or args.detector is not None:
            raise ConfigError(f"--path and --detector serve the built-in tasks ({', '.join(OPTIONS)}); task "
                              f"{cfg.task!r} predicts with its own Task.predict")
        written = predict(cfg, args.weights, args.inputs, args.out, **options)
        print(f"Wrote {len(written)} file(s) to {args.out}")
        return 0
    unknown = [key for key in options if key not in (*OPTIONS.get(cfg.task, {}), *WRITER_OPTIONS)]
    if unknown:
        raise ConfigError(f"unknown {cfg.task} prediction option(s) {unknown} (--option KEY=VALUE); known: "
                          f"{', '.join((*OPTIONS.get(cfg.task, {}), *WRITER_OPTIONS))}")
    writer = {key: options.pop(key) for key in WRITER_OPTIONS if key in options}
    detector, boxes_file = None, None
    if args.detector is None:
        for flag in ("detector_weights", "detector_max_persons"):
            if getattr(args, flag) is not None:
                raise ConfigError(f"--{flag.replace('_', '-')} needs --detector (the detector it belongs to)")
        if args.detector_path != "eager":
            raise ConfigError("--detector-path needs --detector (the detector it runs)")
    else:
        if "boxes" in options:
            raise ConfigError("give the person boxes either with --detector or with --option boxes=FILE, not both")
        detector, boxes_file = detect_persons(cfg, args)
        if boxes_file is not None:
            options["boxes"] = str(boxes_file)
    inferencer = Inferencer(cfg, args.weights, device=cfg.device, path=args.path, detector=detector,
                            calibration_images=args.calibration_images, batch_size=writer.get("batch_size"),
                            **options)
    shown = print_classification if cfg.task == "classification" else None
    written = write_predictions(inferencer, args.inputs, args.out, overlays=bool(writer.get("overlays", True)),
                                max_frames=writer.get("max_frames"), on_result=shown)
    if boxes_file is not None:
        written.insert(0, boxes_file)
    print(f"Wrote {len(written)} file(s) to {args.out}")
    return 0


def print_classification(result: ClassificationResult) -> None:
    """An image's top classes, one ``rank. class  score`` line each."""
    top = [{"class": name, "score": float(p)} for name, p in zip(result.names, result.probabilities, strict=True)]
    print(format_prediction(Path(result.file or result.image_id), top))


def detect_persons(cfg: ExperimentConfig, args: argparse.Namespace) -> tuple[PersonDetector, Path | None]:
    """Build ``--detector`` for a pose config; run it on the image inputs and write their person boxes to
    ``<out>/person_boxes.json``. Returns the detector (for video frames) and that file (None without images)."""
    from ..tasks.detection.person import load_person_detector  # torchvision's detectors: only when asked for

    if cfg.task != "pose":
        raise ConfigError(f"--detector finds persons for top-down pose, but {str(args.config)!r} is a "
                          f"{cfg.task!r} config")
    if args.detector_weights is None:
        raise ConfigError(f"--detector {args.detector} needs --detector-weights (a detector without trained "
                          "weights finds no persons; a torchvision:NAME detector takes DEFAULT, torchvision's own)")
    detector = load_person_detector(args.detector, args.detector_weights, args.detector_threshold,
                                    resolve_device(cfg.device), max_persons=args.detector_max_persons)
    detector = deploy_person_detector(detector, args.detector_path)
    images, _ = expand_inputs(args.inputs, videos=True)  # the images, in the order the pose task reads them
    if not images:
        return detector, None
    boxes_file = Path(args.out) / "person_boxes.json"
    category_id = build_task(cfg).category_id  # the keypoint dataset's: the pose task reads those boxes
    write_json(boxes_file, detected_box_records(detector, images, category_id), indent=1)
    return detector, boxes_file
