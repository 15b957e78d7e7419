"""``hrnet export`` (ONNX, int8 ONNX) and ``hrnet bench`` (every deploy path against eager fp32)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..deploy.bench import recalibrate_batchnorm, run_benchmark
from ..deploy.calibration import calibration_batches
from ..deploy.onnx import DEFAULT_OPSET, OnnxRunner, export_detector_onnx, export_onnx, is_detector, quantize_onnx
from ..deploy.parity import compare_detections, compare_outputs
from ..deploy.paths import PATHS, example_input, list_paths
from ..errors import ConfigError
from ..io import write_json, write_text
from ..media import IMAGENET_MEAN, IMAGENET_STD
from .common import add_model_source_arguments, add_threads_argument, model_from_source, source_input_size

__all__ = ["add_export_parser", "run_export", "add_bench_parser", "run_bench"]

DETECTOR_EXAMPLE_SIZE = (800, 1216)  # HRNetV2p's quoted input; the exported detector takes any size


def _input_size(args: argparse.Namespace, model: torch.nn.Module) -> tuple[int, int]:
    """--input, else a config's own input size, else the model's quoted one."""
    if args.input:
        return tuple(args.input)
    return source_input_size(args) or tuple(example_input(model).shape[-2:])


# --- hrnet export -------------------------------------------------------------------------------


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export", help="export a model to ONNX (fp32 or int8) with a parity check",
        description="Export the model of SOURCE to ONNX: eval mode, BN folded into the convs, a dynamic batch "
                    "axis, opset >= 17. --format onnx-int8 also quantizes it (int8 weights per channel, uint8 "
                    "activations calibrated on --calib images). A detection config exports its torchvision "
                    "detector (one image of any size in, its detections out). The written file is then run "
                    "with ONNX Runtime on random images and compared with the PyTorch model.")
    add_model_source_arguments(p)
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="ONNX file to write")
    p.add_argument("--format", choices=("onnx", "onnx-int8"), default="onnx", help="(default: onnx)")
    p.add_argument("--input", nargs=2, type=int, metavar=("H", "W"),
                   help="input size (default: a config's input size, else the preset's)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})")
    p.add_argument("--calib", type=Path, metavar="DIR",
                   help="int8: folder of representative images to calibrate on (default: random images, which "
                        "is fine for timing only)")
    p.add_argument("--calib-count", type=int, default=64, metavar="N", help="int8: images to use (default: 64)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the ONNX Runtime parity check")
    add_threads_argument(p)
    p.set_defaults(run=run_export, prog=p.prog)
    return p


def _export_detector(args: argparse.Namespace, model: torch.nn.Module) -> int:
    if args.format != "onnx":
        raise ConfigError(f"--format {args.format}: detectors export as fp32 ONNX only (--format onnx)")
    size = tuple(args.input or DETECTOR_EXAMPLE_SIZE)
    export_detector_onnx(model, args.out, size, opset=max(args.opset, 17), metadata={"hrnet.source": args.source})
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 2**20:.1f} MiB, one image of any size per call)")
    if args.check:
        image = torch.rand(3, *size, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            reference = model([image])
        try:
            parity = compare_detections(reference, OnnxRunner(args.out)([image]), PATHS["onnxruntime"].tolerance)
        except ValueError as e:  # a different number of detections
            print(f"ONNX Runtime vs PyTorch on a random image: FAILED ({e})")
            return 1
        print(f"ONNX Runtime vs PyTorch on a random image: {parity}")
        return 0 if parity.ok else 1
    return 0


def run_export(args: argparse.Namespace) -> int:
    model = model_from_source(args)
    if is_detector(model):
        return _export_detector(args, model)
    size = _input_size(args, model)
    example = example_input(model, size)
    metadata = {"hrnet.source": args.source, "hrnet.input_size": json.dumps(list(size))}
    out = Path(args.out)
    if args.format == "onnx":
        export_onnx(model, out, example, opset=args.opset, metadata=metadata)
        tolerance = PATHS["onnxruntime"].tolerance
    else:
        if args.calib is None:
            print("warning: int8 calibration on random images; pass --calib DIR for accuracy")
            calibration = [example_input(model, size, batch=8, seed=1)]
        else:
            pretrained_cfg = getattr(model, "pretrained_cfg", {})
            mean, std = pretrained_cfg.get("mean", IMAGENET_MEAN), pretrained_cfg.get("std", IMAGENET_STD)
            calibration = calibration_batches(args.calib, size, mean, std, args.calib_count)
        fp32 = out.with_name(out.stem + ".fp32.onnx")
        export_onnx(model, fp32, example, opset=args.opset, metadata=metadata)
        quantize_onnx(fp32, out, calibration)
        fp32.unlink()
        tolerance = PATHS["onnxruntime_int8"].tolerance
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB, {size[0]}x{size[1]}, dynamic batch)")
    if args.check:
        images = example_input(model, size, batch=2, seed=2)
        with torch.no_grad():
            parity = compare_outputs(model(images), OnnxRunner(out)(images), tolerance)
        print(f"ONNX Runtime vs PyTorch on 2 random images: {parity}")
        if not parity.ok:
            return 1
    return 0


# --- hrnet bench --------------------------------------------------------------------------------


def add_bench_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench", help="time every deploy path against eager fp32 on this machine",
        description="Time the model of SOURCE in eager fp32 and in every deploy path (BN folding, channels_last, "
                    "torch.compile, bf16, ONNX Runtime, int8; the CUDA paths with --device cuda): ms/img at each "
                    "batch size, img/s, peak memory, GFLOP/s and the share of the machine's conv peak (measured "
                    "in the same run), speed-up over eager fp32, max-abs-diff from eager. A torchvision "
                    "ResNet-50 yardstick lets runs on different days compare by ratio. Without --weights the BN "
                    "statistics are re-estimated on random images so that activations have realistic scales.")
    add_model_source_arguments(p)
    p.add_argument("--input", nargs=2, type=int, metavar=("H", "W"), help="input size (default: the preset's)")
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8], metavar="N", help="batch sizes (default: 1 8)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="(default: cpu)")
    p.add_argument("--paths", type=lambda s: [x for x in s.split(",") if x], metavar="A,B",
                   help="deploy paths to time (default: all this machine can run); see hrnet.deploy.PATHS")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's default)")
    p.add_argument("--min-time", type=float, default=2.0, metavar="S",
                   help="seconds of timed calls per path and batch size (default: 2)")
    p.add_argument("--no-yardstick", dest="yardstick", action="store_false", help="skip the ResNet-50 yardstick")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table to FILE")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write all measurements to FILE")
    video = p.add_argument_group(
        "--pipeline video: the whole pose video pipeline (SOURCE: a pose config) on a synthetic video of walking "
        "persons, against a reference written like the official demo (detector on every frame, each person run "
        "alone through the eager fp32 model), in one run: frames/s, the share of each stage, OKS agreement")
    video.add_argument("--pipeline", choices=("model", "video"), default="model",
                       help="model: the network alone in each deploy path (default); video: the whole pipeline")
    video.add_argument("--frames", type=int, default=48, metavar="N", help="video length (default: 48)")
    video.add_argument("--persons", type=int, default=3, metavar="N", help="persons in the video (default: 3)")
    video.add_argument("--video-size", nargs=2, type=int, default=[360, 640], metavar=("H", "W"),
                       help="frame size (default: 360 640)")
    video.add_argument("--detect-every", type=int, default=5, metavar="N",
                       help="the fastest pipeline runs the detector every N frames (default: 5)")
    video.add_argument("--frames-per-step", type=int, default=4, metavar="N",
                       help="frames whose persons share a batch (default: 4; in the detect-every-N pipeline the "
                            "frames of a batch take the boxes of the poses found before it)")
    video.add_argument("--fp32-path", default="onnxruntime", metavar="PATH",
                       help="deploy path of the fp32 pipeline (default: onnxruntime)")
    video.add_argument("--fast-path", default="onnxruntime_int8", metavar="PATH",
                       help="deploy path of the fastest pipeline (default: onnxruntime_int8)")
    video.add_argument("--detector-cost", metavar="NAME",
                       help="a torchvision detector (e.g. fasterrcnn_mobilenet_v3_large_320_fpn) run on every "
                            "detected frame for its time, random weights; the boxes are the video's true ones "
                            "(default: the true boxes alone)")
    video.add_argument("--detector-path", choices=("eager", "onnxruntime"), default="onnxruntime",
                       help="how our pipelines run that detector (the reference: eager): onnxruntime (default, fp32, "
                            "as hrnet predict --detector-path onnxruntime) or eager")
    p.set_defaults(run=run_bench, prog=p.prog)
    return p


def run_bench(args: argparse.Namespace) -> int:
    if args.pipeline == "video":
        return run_video_bench(args)
    model = model_from_source(args)
    size = _input_size(args, model)
    if args.weights is None:
        print("no --weights: re-estimating BN statistics on random images")
        recalibrate_batchnorm(model, size)
    paths = args.paths or list_paths(args.device)
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        raise ConfigError(f"--paths: unknown deploy path(s) {unknown}; known: {', '.join(PATHS)}")
    report = run_benchmark(model, args.source, size, paths, sorted(set(args.batch)), args.threads, args.min_time,
                           args.yardstick)
    table = report.markdown()
    print()
    print(table)
    if args.markdown:
        write_text(args.markdown, table + "\n")
    if args.json:
        write_json(args.json, report.to_json(), indent=1)
    failed = [r.path for r in report.results if r.error or r.parity_ok is False]
    return 1 if failed else 0


def run_video_bench(args: argparse.Namespace) -> int:
    """``hrnet bench --pipeline video CONFIG``: see :mod:`hrnet.inference.pose_bench`."""
    from ..engine.build import build_model, build_task
    from ..engine.config import load_config
    from ..inference.deployed import check_path
    from ..inference.pose_bench import run_video_benchmark
    from ..synthetic.video import moving_people

    if not args.source.endswith((".yaml", ".yml")):
        raise ConfigError(f"--pipeline video needs a pose config (it has the codec and keypoints), not {args.source!r}")
    cfg = load_config(args.source, args.options)
    if cfg.task != "pose":
        raise ConfigError(f"--pipeline video times the pose pipeline; {args.source!r} is a {cfg.task!r} config")
    for path in (args.fp32_path, args.fast_path):
        check_path(path)
    if args.threads:
        torch.set_num_threads(args.threads)
    task = build_task(cfg)
    model = build_model(task, cfg, args.weights).eval()
    if args.weights is None:
        print("no --weights: re-estimating BN statistics on random images")
        recalibrate_batchnorm(model, tuple(example_input(model).shape[-2:]) if not source_input_size(args)
                              else source_input_size(args))
    print(f"synthesizing {args.frames} frames of {args.video_size[1]}x{args.video_size[0]} with {args.persons} "
          "walking persons ...")
    video = moving_people(args.frames, tuple(args.video_size), args.persons, speed=0.004)
    batched = f"{args.frames_per_step} frames per batch" if args.frames_per_step > 1 else "one frame per batch"
    pipelines = [
        {"name": f"ours, {args.fp32_path}, detect every frame, {batched}", "path": args.fp32_path,
         "frames_per_step": args.frames_per_step},
        {"name": f"ours, {args.fast_path}, detect every frame, {batched}", "path": args.fast_path,
         "frames_per_step": args.frames_per_step},
        {"name": f"ours, {args.fast_path}, detect every {args.detect_every}, tracking, {batched}",
         "path": args.fast_path, "detect_every": args.detect_every, "track": True,
         "frames_per_step": args.frames_per_step},
    ]
    report = run_video_benchmark(model, task.codec, task.meta, video, pipelines, args.detector_cost,
                                 detector_path=args.detector_path, model_name=f"{cfg.model.name} ({args.source})",
                                 threads=args.threads)
    table = report.markdown()
    if args.weights is None:
        table += ("\n\nRandom weights: the speeds and the fp32 agreement hold; the agreement of reduced precision and "
                  "of boxes carried by poses does not (random poses carry boxes off the persons): give --weights.")
    print()
    print(table)
    if args.markdown:
        write_text(args.markdown, table + "\n")
    return 0
