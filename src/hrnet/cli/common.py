"""Argument helpers shared by the ``hrnet`` subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from ..deploy.paths import PATHS
from ..engine.build import build_model, build_task
from ..engine.checkpoint import load_model_weights
from ..engine.config import ExperimentConfig, load_config
from ..errors import HRNetError
from ..models.registry import build_model as build_preset

__all__ = [
    "add_config_arguments",
    "load_experiment",
    "parse_key_value",
    "print_main",
    "is_main_process_env",
    "add_model_source_arguments",
    "model_from_source",
    "add_threads_argument",
    "add_path_arguments",
    "positive_int",
    "source_input_size",
]

OVERRIDES_HELP = (
    "config overrides as KEY.SUB=VALUE, values parsed as YAML, e.g. train.epochs=10 "
    "train.optimizer.lr=1e-3 model.overrides.width=16 output_dir=runs/try1"
)


def add_config_arguments(parser: argparse.ArgumentParser, positional_overrides: bool = True) -> None:
    """``CONFIG`` and the overrides, positional (``train``/``eval``) or as ``--set`` (``predict``)."""
    parser.add_argument("config", type=Path, metavar="CONFIG", help="experiment config (YAML)")
    if positional_overrides:
        parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    else:
        parser.add_argument(
            "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=OVERRIDES_HELP
        )


def positive_int(text: str) -> int:
    """argparse ``type=`` for counts: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: the CPU threads torch computes with (``hrnet.cli.main`` applies it before running)."""
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="CPU threads for torch (default: torch's choice, usually all cores)")


def add_path_arguments(parser: argparse.ArgumentParser) -> None:
    """``--path P`` and ``--calibration-images N`` (``predict`` and ``eval``)."""
    parser.add_argument("--path", default="eager", metavar="P",
                        help=f"deploy path the network runs in: {', '.join(PATHS)} (default eager; see hrnet bench)")
    parser.add_argument("--calibration-images", type=positive_int, default=64, metavar="N",
                        help="int8 paths: train-split images to calibrate on (64)")


def load_experiment(args: argparse.Namespace) -> ExperimentConfig:
    return load_config(args.config, args.overrides)


def parse_key_value(text: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML (argparse ``type=``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not valid YAML ({e})") from None


def is_main_process_env() -> bool:
    """True unless this is a non-zero rank started by ``torchrun`` (which prints nothing)."""
    return os.environ.get("RANK", "0") == "0"


def print_main(*lines: str) -> None:
    """Print to stdout on the main process only."""
    if is_main_process_env():
        for line in lines:
            print(line)
        sys.stdout.flush()


def add_model_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``SOURCE`` (a preset name or an experiment config), ``--weights`` and ``--set`` options."""
    parser.add_argument("source", metavar="SOURCE", help="model preset name (see hrnet info --list) or config YAML")
    parser.add_argument("--weights", type=Path, metavar="W", help="weights to load (default: as built)")
    parser.add_argument(
        "--set",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="preset option (e.g. width=16) or, with a config, a config override (repeatable)",
    )


def _is_config(source: str) -> bool:
    return source.endswith((".yaml", ".yml"))


def source_input_size(args: argparse.Namespace) -> tuple[int, int] | None:
    """The (height, width) the model of a config ``args.source`` is trained at: pose ``data.input_size``,
    classification ``data.image_size``, segmentation ``data.crop_size``; None for a preset or another task."""
    if not _is_config(args.source):
        return None
    cfg = load_config(args.source, args.options)
    data = cfg.data
    if cfg.task == "pose":
        width, height = data.input_size
        return int(height), int(width)
    if cfg.task == "classification":
        return int(data.image_size), int(data.image_size)
    if cfg.task == "segmentation" and data.crop_size:
        return int(data.crop_size[0]), int(data.crop_size[1])
    return None


def model_from_source(args: argparse.Namespace) -> nn.Module:
    """The model named by ``args.source`` (preset or config), with ``args.weights`` loaded, in eval mode."""
    if _is_config(args.source):
        cfg = load_config(args.source, args.options)
        model = build_model(build_task(cfg), cfg, args.weights)
    else:
        options = {}
        for text in args.options:
            try:
                key, value = parse_key_value(text)
            except argparse.ArgumentTypeError as e:
                raise HRNetError(f"--set: {e}") from None
            options[key] = value
        model = build_preset(args.source, **options)
        if args.weights is not None:
            load_model_weights(model, args.weights)
    return model.eval()
