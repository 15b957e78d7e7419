"""Datasets shared by the tasks: the synthetic generator and the location of the shared sample data."""

from __future__ import annotations

import os
from pathlib import Path

from .synthetic import synthesize

__all__ = ["shared_data_dir", "synthesize"]


def shared_data_dir() -> Path:
    """The folder of real sample data: ``$HRNET_SHARED_DATA`` if set, else ``<repository>/../shared/data``.

    The folder may be absent (e.g. in a fresh clone); callers check ``.is_dir()`` and skip.
    """
    env = os.environ.get("HRNET_SHARED_DATA")
    if env:
        return Path(env).expanduser()
    repository = Path(__file__).resolve().parents[3]
    return repository.parent / "shared" / "data"
