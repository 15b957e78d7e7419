"""Exceptions for problems the user can fix: the CLI reports them in one paragraph with exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HRNetError(Exception):
    """Base class: a user-facing problem (bad config, bad input data, bad checkpoint)."""


class ConfigError(HRNetError, ValueError):
    """An unknown or ill-typed config key, a missing config file, an unknown preset."""


class DataError(HRNetError, ValueError):
    """A dataset, annotation or image that cannot be used; the message names the file or record."""


class CheckpointError(HRNetError, ValueError):
    """A checkpoint that is corrupt, unsafe, or does not fit the model."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """A ' Did you mean ...?' suffix listing the closest valid names, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
