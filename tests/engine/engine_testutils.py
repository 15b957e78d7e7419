"""Helpers for the engine and CLI tests: configs of the toy task, subprocess runs of ``hrnet``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

ENGINE_TESTS = Path(__file__).resolve().parent


def toy_config(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """A raw config of the toy task training into ``tmp_path/run``; each of ``sections`` updates
    that section's keys (or replaces a plain value)."""
    (tmp_path / "toy_data").mkdir(exist_ok=True)
    raw: dict[str, Any] = {
        "task": "toy",
        "imports": ["engine_toy_task"],
        "model": {"name": "mlp", "overrides": {}},
        "data": {"root": str(tmp_path / "toy_data")},
        "train": {
            "epochs": 2,
            "batch_size": 4,
            "workers": 0,
            "optimizer": {"name": "adam", "lr": 0.01},
            "log_every": 3,
        },
        "output_dir": str(tmp_path / "run"),
        "seed": 7,
        "device": "cpu",
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


def write_config(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def hrnet_command(args: list[str], launcher: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of ``python -m hrnet.cli.main ARGS`` (optionally under
    ``launcher``, e.g. torchrun) in a fresh process that can import the toy task."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ENGINE_TESTS), os.environ.get("PYTHONPATH", "")])}
    return [sys.executable, *(launcher or []), "-m", "hrnet.cli.main", *args], env


def run_hrnet(args: list[str], launcher: list[str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run :func:`hrnet_command` to its end."""
    command, env = hrnet_command(args, launcher)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def start_hrnet(args: list[str]) -> subprocess.Popen:
    """Start :func:`hrnet_command` in the background (text stdout/stderr pipes)."""
    command, env = hrnet_command(args)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def model_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
