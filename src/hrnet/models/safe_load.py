"""Reading ``torch.load`` files without running code from them, and saying why a file was refused.

``torch.load(weights_only=True)`` refuses any pickle that would import and call something, but its
message is the same for a dangerous file and a damaged one, and suggests ``weights_only=False``. Here a
refused file is read again statically (:mod:`pickletools`, which executes nothing) to name the Python
object it would import, or to call it corrupt when its bytes are no pickle at all.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

__all__ = ["SAFE_DATA_TYPES", "torch_load_safely"]

# Plain data that training checkpoints keep beside the weights (numpy metrics, timm's argparse
# namespace). Rebuilding them runs no code from the file, so ``weights_only`` may accept them.
_core = getattr(np, "_core", None) or np.core  # numpy 2 renamed numpy.core
_dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25: one class per dtype
SAFE_DATA_TYPES = [
    np.ndarray,
    np.dtype,
    *(getattr(_dtypes, name) for name in dir(_dtypes) if name.endswith("DType")),
    argparse.Namespace,
    _core.multiarray.scalar,
    _core.multiarray._reconstruct,
    (_core.multiarray.scalar, "numpy.core.multiarray.scalar"),  # pickled by numpy < 2
    (_core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
]

# Globals a state-dict pickle names: anything else found in a refused file is reported as the culprit.
_PLAIN_GLOBALS = re.compile(
    r"(torch|collections|_codecs)\.|numpy\.(_?core\.multiarray\.|dtype|ndarray|dtypes\.)|argparse\.Namespace$"
    r"|builtins\.(set|frozenset|bytearray|slice|complex)$"
)
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def _pickle_streams(path: Path) -> list[bytes]:
    """The pickle byte streams of a file: ``data.pkl`` of a zip checkpoint, or the file itself."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [archive.read(name) for name in archive.namelist() if name.endswith(".pkl")]
    return [path.read_bytes()]


def _pickle_globals(path: Path) -> list[str] | None:
    """Every ``module.name`` a pickle file would import, read statically with :mod:`pickletools` (no
    code runs); None when the bytes do not parse as pickles (a corrupt file, not a dangerous one)."""
    found: list[str] = []
    parsed = False  # one whole pickle read
    try:
        for data in _pickle_streams(path):
            stream = io.BytesIO(data)
            while stream.tell() < len(data):  # legacy torch files hold several pickles in a row
                strings, memo, last = [], {}, None
                for opcode, arg, _ in pickletools.genops(stream):
                    parsed = parsed or opcode.name == "STOP"
                    if opcode.name in ("GLOBAL", "INST"):
                        found.append(str(arg).replace(" ", "."))
                    elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    elif opcode.name in _STRING_OPS:
                        last = str(arg)
                        strings.append(last)
                    elif opcode.name == "MEMOIZE":
                        memo[len(memo)] = last
                    elif opcode.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                        memo[arg] = last
                    elif opcode.name in ("GET", "BINGET", "LONG_BINGET") and isinstance(memo.get(arg), str):
                        strings.append(memo[arg])
                    else:
                        last = None
    except (ValueError, EOFError, zipfile.BadZipFile, KeyError, pickle.UnpicklingError, OSError):
        if not parsed:
            return None
    return list(dict.fromkeys(found))


def _load_error(path: Path, error: Exception) -> CheckpointError:
    """Why torch could not read ``path``: code it would run (naming the global), or a damaged file."""
    message = str(error)
    if "Weights only load failed" in message:
        names = _pickle_globals(path)  # every global, where torch names only the first it refuses
        culprits = None if names is None else [n for n in names if not _PLAIN_GLOBALS.match(n)]
        named = re.search(r"GLOBAL (\S+)|got (<class '[^']+'>)|function (\S+)", message)
        if not culprits and named:
            culprits = [next(g for g in named.groups() if g)]
        if culprits:
            return CheckpointError(
                f"checkpoint {path} was refused: it contains a pickled Python object ({', '.join(culprits[:3])}) "
                "that loading would have to import and call, which could run code; hrnet never runs code "
                "from a file. If the file holds a whole pickled model from a source you trust, load it "
                "yourself and save its state_dict() instead."
            )
        if culprits is not None:
            return CheckpointError(f"checkpoint {path} was refused: its pickle uses instructions that the "
                                   "safe loader does not accept (e.g. a newer pickle protocol); save it with "
                                   "torch.save(state_dict) instead.")
        reason = "its bytes are not a pickle"
    elif isinstance(error, EOFError):
        reason = "the file ends early"
    else:  # torch's reader errors run on with advice; their first sentence says what is wrong
        reason = message.strip().split("\n")[0].split(". ")[0].rstrip(".") or type(error).__name__
    return CheckpointError(f"checkpoint {path} is corrupt or truncated: it cannot be read as a PyTorch "
                           f"checkpoint ({reason}).")


def torch_load_safely(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` (plus numpy and argparse data), on the CPU: a file that
    would run code is refused naming the Python object it would import, and a damaged one is reported
    as corrupt or truncated, both as :class:`CheckpointError`."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); the download or save was interrupted.")
    try:
        with torch.serialization.safe_globals(SAFE_DATA_TYPES):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for bad files; all mean "this file is unusable"
        raise _load_error(path, e) from None
