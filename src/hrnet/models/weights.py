"""Loading and saving weights: official HRNet checkpoints, timm ``hrnet_*`` files and our safetensors.

A checkpoint goes through three steps before it touches a model:

1. **read** (:func:`load_state_dict_file`): safetensors, or ``torch.load(weights_only=True)``, so that
   no code from a file ever runs; checkpoint dicts are unwrapped to the tensors they hold;
2. **normalise** (:func:`normalize_state_dict`): the prefixes that training wrappers add are removed
   (``module.`` of DataParallel, ``model.`` of the segmentation ``FullModel``), loss buffers are
   dropped, the backbone is aligned with the model's, and timm's bias-free ``*_ssld`` head convs get
   zero biases;
3. **match** (:func:`load_weights`): every tensor is checked against the model before anything is
   copied, so a checkpoint that does not fit fails with one message and leaves the model untouched.

ImageNet classification weights loaded into a pose, segmentation or detection model give that model
its backbone; the classification head is reported as skipped, as the official code does when it
initialises from ImageNet.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from ..errors import CheckpointError
from ..io import atomic_write, write_json
from .heads import ClsHRNet, PoseHRNet
from .openmmlab import convert_openmmlab, is_openmmlab
from .safe_load import torch_load_safely

__all__ = [
    "LoadReport",
    "torch_load_safely",
    "non_float_weights",
    "load_state_dict_file",
    "normalize_state_dict",
    "load_weights",
    "save_weights",
    "convert_checkpoint",
    "describe_state_dict",
    "cache_dir",
]

StateDict = dict[str, Tensor]
Source = str | os.PathLike | Mapping[str, Any]

# Entries of a checkpoint dict that hold the weights, in order of preference: the official pose
# ``checkpoint.pth`` has both ``state_dict`` (latest, what training resumes from) and ``best_state_dict``.
WEIGHT_ENTRIES = ("state_dict", "model", "best_state_dict", "model_state_dict")
WRAPPER_PREFIXES = ("module.", "model.")  # DataParallel / DDP; segmentation ``FullModel(model, loss)``
TRAINING_ONLY_PREFIX = "loss."  # ``FullModel``'s criterion buffers, e.g. Cityscapes class weights
# Describing a file without a model: the official backbone module names (a model states its own).
BACKBONE_KEY = re.compile(r"(conv1|bn1|conv2|bn2|layer1|transition\d+|stage\d+)\.")
# the classification head's own modules (its final_layer shares the pose head's name)
CLASSIFICATION_HEAD = frozenset(ClsHRNet.head_modules) - frozenset(PoseHRNet.head_modules)
# timm's hrnet_w18_ssld / hrnet_w48_ssld build these convs with ``bias=False``; the official ones have a bias.
SSLD_BIAS_FREE = re.compile(r"(^|\.)(downsamp_modules\.\d+\.0|final_layer\.0)\.bias$")

SHOW = 5  # names listed per category in a summary
SHOW_MISMATCHED = 10


@dataclass
class LoadReport:
    """What :func:`load_weights` did, key by key (model key names, after normalisation)."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"Loaded weights from {self.source}: {len(self.loaded)} tensors loaded, {len(self.missing)} "
                 f"missing, {len(self.unexpected)} unexpected, {len(self.skipped)} skipped."]
        for label, names in (("missing", self.missing), ("unexpected", self.unexpected),
                             ("skipped", self.skipped)):
            if names:
                lines.append(f"  {label}: {_first(names, SHOW)}")
        if self.notes:
            lines.append(f"  notes: {'; '.join(self.notes)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _first(names: list[str], n: int) -> str:
    more = f" (+{len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


# ----------------------------------------------------------------------------------------------- read


def _is_safetensors(path: Path) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length and a JSON header."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    return head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < path.stat().st_size


def _read_safetensors(path: Path) -> tuple[StateDict, dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            return {k: f.get_tensor(k) for k in f.keys()}, metadata  # noqa: SIM118 (safe_open is no dict)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: it cannot be read as a "
                              f"safetensors file ({e}).") from e


def _unwrap(obj: Any, name: str) -> tuple[StateDict, str | None]:
    """The tensors of a state dict, or of the weight entry of a checkpoint dict (and that entry's name)."""
    entries: list[str] = []
    while isinstance(obj, Mapping):
        if obj and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
            return dict(obj), ".".join(entries) or None
        entry = next((k for k in WEIGHT_ENTRIES if isinstance(obj.get(k), Mapping)), None)
        if entry is None:
            break
        entries.append(entry)
        obj = obj[entry]
    where = f" entry '{'.'.join(entries)}' of" if entries else ""
    if isinstance(obj, Mapping):
        odd = [f"{k!r} ({type(v).__name__})" for k, v in obj.items() if not isinstance(v, Tensor)]
        found = f"its entries include {', '.join(odd[:SHOW])}" if odd else "it is empty"
    else:
        found = f"it holds a {type(obj).__name__}"
    raise CheckpointError(
        f"{name}: no state dict found in{where} it: {found}. Expected a dict of tensors, or a checkpoint "
        f"dict with one of the entries {', '.join(WEIGHT_ENTRIES)}."
    )


FLOAT_SUFFIXES = (".weight", ".bias", ".running_mean", ".running_var")


def non_float_weights(state: Mapping[str, Tensor], model_state: Mapping[str, Tensor] | None = None) -> list[str]:
    """The tensors of ``state`` stored with an integer or boolean dtype where floats belong: where the
    model's tensor is floating point, or (without a model) weights, biases and BatchNorm statistics.
    Copying them would silently round the values (a file saved as int32/uint8 loads as zeros)."""
    def wants_float(key: str) -> bool:
        if model_state is not None:
            return key in model_state and model_state[key].is_floating_point()
        return key.endswith(FLOAT_SUFFIXES)

    return [f"{k} ({v.dtype})" for k, v in state.items() if wants_float(k) and not v.is_floating_point()]


def _dtype_error(name: str, wrong: list[str]) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {name} stores {len(wrong)} floating-point tensor(s) as integers or booleans: "
        f"{_first(wrong, SHOW)}. Loading would round the weights silently; the file was probably saved "
        "with a wrong dtype. Convert the original checkpoint again."
    )


def _read_file(path: str | os.PathLike) -> tuple[StateDict, dict[str, str], list[str]]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist.")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory; expected a .pth/.pt or .safetensors file.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); the download or save was interrupted.")
    if _is_safetensors(path):
        tensors, metadata = _read_safetensors(path)
        return tensors, metadata, []
    state, entry = _unwrap(torch_load_safely(path), str(path))
    return state, {}, [f"used entry '{entry}'"] if entry else []


def load_state_dict_file(path: str | os.PathLike) -> StateDict:
    """Tensors of a checkpoint file, safely: safetensors, or a torch file read with ``weights_only=True``.

    Accepts a plain state dict and the official checkpoint dicts (``{'state_dict': ...}``,
    ``best_state_dict``, ``model``, with optimizer, epoch and metrics beside them). Keys are returned
    as stored; :func:`normalize_state_dict` removes training prefixes. A missing, empty, corrupt or
    truncated file, or a pickle that would run code, raises :class:`CheckpointError`.
    """
    return _read_file(path)[0]


def cache_dir() -> Path:
    """Where downloaded checkpoints are kept: ``$HRNET_CACHE`` or ``~/.cache/hrnet``."""
    return Path(os.environ.get("HRNET_CACHE") or Path.home() / ".cache" / "hrnet")


def _download(url: str, progress: bool) -> Path:
    """Download ``url`` into the cache once (resumed after a cut connection, renamed into place when whole)."""
    from .download import download_file

    name = Path(urllib.parse.urlparse(url).path).name
    if not name:
        raise CheckpointError(f"cannot download {url}: the URL does not end in a file name.")
    dst = cache_dir() / name
    if not dst.exists():
        part = download_file(url, dst.with_name(f"{name}.part"), label=name, progress=progress)
        os.replace(part, dst)
    return dst


def _resolve(source: str | os.PathLike, progress: bool) -> Path:
    """A URL is downloaded into the cache; a weights-registry name (``hrnet weights list``) that is not also
    a file here is fetched (downloaded, checked and converted once) into the weights cache."""
    text = os.fspath(source)
    if "://" in text:
        return _download(text, progress)
    from .zoo import WEIGHTS

    if text in WEIGHTS and not Path(text).exists():
        from .download import fetch_weights

        return fetch_weights(WEIGHTS[text], progress=progress)
    return Path(text)


def _read_source(source: Source, progress: bool) -> tuple[StateDict, dict[str, str], list[str], str]:
    """Tensors, metadata, notes and a printable name of a path, URL or in-memory (checkpoint) dict."""
    if isinstance(source, Mapping):
        state, entry = _unwrap(source, "the given state dict")
        return state, {}, [f"used entry '{entry}'"] if entry else [], "a state dict"
    if not isinstance(source, (str, os.PathLike)):
        raise CheckpointError(f"cannot load weights from a {type(source).__name__}; expected a file path, "
                              "a URL or a state dict.")
    path = _resolve(source, progress)
    return (*_read_file(path), os.fspath(source))


# ------------------------------------------------------------------------------------------ normalise


def _stem_prefix(keys: Iterable[str]) -> str | None:
    """The prefix under which an HRNet backbone lives (``''``, ``'backbone.'``, ...), or None."""
    keys = set(keys)
    found = [k[: -len("conv1.weight")] for k in keys if k.endswith("conv1.weight")]
    found = [p for p in found if f"{p}layer1.0.conv1.weight" in keys]
    return min(found, key=len) if found else None


def _strip_wrappers(key: str, model_keys: set[str]) -> tuple[str, list[str]]:
    removed = []
    while key not in model_keys and key.startswith(WRAPPER_PREFIXES):
        prefix = key.split(".", 1)[0] + "."
        removed.append(prefix)
        key = key[len(prefix):]
    return key, removed


def normalize_state_dict(state_dict: Mapping[str, Tensor], model_keys: Iterable[str] | None = None
                         ) -> tuple[StateDict, list[str], list[str]]:
    """Official/timm key layout -> the model's: returns ``(tensors, dropped_keys, notes)``.

    Removes ``module.`` / ``model.`` prefixes (unless the model itself has such a key), drops the
    segmentation ``FullModel``'s ``loss.*`` buffers, and, given the model's keys, moves the backbone
    to the model's prefix (e.g. an mmdetection ``backbone.`` into a bare HRNet) and gives timm's
    bias-free ``*_ssld`` head convolutions zero biases (the same function as no bias).
    """
    model_keys = set(model_keys or ())
    out: StateDict = {}
    dropped: list[str] = []
    removed: set[str] = set()
    for key, value in state_dict.items():
        new_key, stripped = _strip_wrappers(key, model_keys)
        removed.update(stripped)
        if new_key.startswith(TRAINING_ONLY_PREFIX) and new_key not in model_keys:
            dropped.append(new_key)
        else:
            out[new_key] = value
    notes = [f"removed prefix {' and '.join(repr(p) for p in sorted(removed))}"] if removed else []
    if dropped:
        notes.append(f"dropped {len(dropped)} training-loss buffer(s)")
    if not model_keys:
        return out, dropped, notes

    file_prefix, model_prefix = _stem_prefix(out), _stem_prefix(model_keys)
    if file_prefix is not None and model_prefix is not None and file_prefix != model_prefix:
        out = {(model_prefix + k[len(file_prefix):] if k.startswith(file_prefix) else k): v
               for k, v in out.items()}
        notes.append(f"moved the backbone from prefix '{file_prefix}' to '{model_prefix}'")

    filled = [k for k in model_keys if SSLD_BIAS_FREE.search(k) and k not in out and k[:-4] + "weight" in out]
    for key in filled:
        weight = out[key[:-4] + "weight"]
        out[key] = torch.zeros(weight.shape[0], dtype=weight.dtype)
    if filled:
        notes.append(f"gave {len(filled)} bias-free head conv(s) zero biases (timm *_ssld layout)")
    return out, dropped, notes


# -------------------------------------------------------------------------------------------- describe


def _is_backbone(key: str, prefix: str, backbone: Iterable[str] | None = None) -> bool:
    """Whether ``key`` is a backbone tensor: its module under ``prefix`` is one of ``backbone`` (the
    model's ``backbone_modules``), or, describing a file alone, has an official backbone name."""
    if not key.startswith(prefix):
        return False
    if backbone is None:
        return BACKBONE_KEY.match(key, len(prefix)) is not None
    return _top_module(key, prefix) in backbone


def _backbone_modules(model: nn.Module, prefix: str) -> tuple[str, ...] | None:
    """The backbone module names the HRNet at ``prefix`` of ``model`` states (None for another network)."""
    net = model.get_submodule(prefix.rstrip(".")) if prefix else model
    return getattr(net, "backbone_modules", None)


def _top_module(key: str, prefix: str) -> str:
    return (key[len(prefix):] if key.startswith(prefix) else key).split(".", 1)[0]


def describe_state_dict(state_dict: Mapping[str, Tensor]) -> str:
    """What a state dict appears to hold, e.g. ``an HRNet backbone with branch widths 32/64/128/256 (1/4/3
    modules in stages 2/3/4) and a pose heatmap head (17 joints)``; used in error messages."""
    prefix = _stem_prefix(state_dict)
    if prefix is None:
        names = sorted({k.split(".", 1)[0] for k in state_dict})
        return f"no HRNet backbone (top-level modules: {_first(names, SHOW)})"
    branch = re.compile(re.escape(prefix) + r"stage(\d+)\.(\d+)\.branches\.(\d+)\.0\.conv1\.weight$")
    widths: dict[int, tuple[int, int]] = {}  # branch -> (stage, width), from the deepest stage
    modules: dict[int, set[int]] = {}
    for key, value in state_dict.items():
        m = branch.match(key)
        if m:
            stage, module, b = map(int, m.groups())
            modules.setdefault(stage, set()).add(module)
            if b not in widths or widths[b][0] < stage:
                widths[b] = (stage, value.shape[0])
    text = "an HRNet backbone"
    if widths:
        text += (f" with branch widths {'/'.join(str(widths[b][1]) for b in sorted(widths))}"
                 f" ({'/'.join(str(len(modules[s])) for s in sorted(modules))} modules in stages "
                 f"{'/'.join(str(s) for s in sorted(modules))})")
    return f"{text} and {_describe_heads(state_dict, prefix)}"


# (key that identifies a head, what it is, with the size of its first dimension; its top-level modules)
HEADS = (
    ("classifier.weight", "a classification head ({} classes)",
     {"incre_modules", "downsamp_modules", "final_layer", "classifier"}),
    ("cls_head.weight", "an OCR segmentation head ({} classes)",
     {"aux_head", "conv3x3_ocr", "ocr_distri_head", "cls_head"}),
    ("last_layer.3.weight", "a segmentation head ({} classes)", {"last_layer"}),
    ("final_layer.weight", "a pose heatmap head ({} joints)", {"final_layer"}),
    ("neck.reduction_conv.weight", "an HRFPN pyramid neck ({} channels)", {"neck"}),
)


def _describe_heads(state_dict: Mapping[str, Tensor], prefix: str) -> str:
    found, covered = [], set()
    for key, text, modules in HEADS:
        if prefix + key in state_dict:
            found.append(text.format(state_dict[prefix + key].shape[0]))
            covered |= modules
    other = dict.fromkeys(_top_module(k, prefix) for k in state_dict if not _is_backbone(k, prefix))
    other = [m for m in other if m not in covered]
    if other:
        found.append(f"other modules ({', '.join(other)})")
    return " and ".join(found) if found else "no head"


# ----------------------------------------------------------------------------------------------- load


def _has_classification_head(keys: Iterable[str], prefix: str) -> bool:
    return any(_top_module(k, prefix) in CLASSIFICATION_HEAD for k in keys)


def _compare(state: Mapping[str, Tensor], model_state: Mapping[str, Tensor]) -> str:
    return f"the file holds {describe_state_dict(state)}; the model has {describe_state_dict(model_state)}."


def _mismatch_error(name: str, mismatched: list, state: StateDict, model_state: StateDict, prefix: str,
                    backbone: Iterable[str] | None) -> CheckpointError:
    shapes = "; ".join(f"{k}: file {list(a)} vs model {list(b)}" for k, a, b in mismatched[:SHOW_MISMATCHED])
    more = f" (+{len(mismatched) - SHOW_MISMATCHED} more)" if len(mismatched) > SHOW_MISMATCHED else ""
    hint = _compare(state, model_state)
    if not any(_is_backbone(k, prefix, backbone) for k, _, _ in mismatched):
        hint += " Only the head differs: pass backbone_only=True to load the backbone and train a new head."
    return CheckpointError(f"checkpoint {name} does not fit the model: {len(mismatched)} tensor(s) have "
                           f"other shapes: {shapes}{more}. In short: {hint}")


def load_weights(model: nn.Module, source: Source, *, strict: bool = False, verbose: bool = True,
                 backbone_only: bool = False) -> LoadReport:
    """Load a checkpoint into ``model`` and report what was loaded, missing, unexpected and skipped.

    ``source`` is a file (``.pth``/``.pt``/``.pth.tar`` in any official saved form, timm ``hrnet_*``
    weights, our ``.safetensors``), an ``http(s)://`` or ``file://`` URL (downloaded once into
    :func:`cache_dir`), a weights-registry name (``hrnet weights list``; fetched into its cache) or a
    state dict. A whole mmpose / mmsegmentation / mmdetection model is first mapped onto the model's
    layout (:mod:`hrnet.models.openmmlab`). Keys are normalised with :func:`normalize_state_dict`; a
    missing ``num_batches_tracked`` (InPlaceABN checkpoints) keeps the model's value.

    Classification weights loaded into a model with another head, a model without a head, or any
    model with ``backbone_only=True`` load the backbone only; the file's other tensors are listed as
    skipped. Otherwise a file whose head belongs to another task (e.g. an OCR checkpoint into a
    plain segmentation model) is refused, as would be a silently untrained head. Any shape mismatch
    raises :class:`CheckpointError` naming the tensors and the architecture the file appears to
    hold; ``strict=True`` also raises on missing or unexpected tensors. Nothing is copied unless
    every check passes.
    """
    state, metadata, notes, name = _read_source(source, progress=verbose)
    model_state = model.state_dict()
    mm_skipped: list[str] = []
    if not backbone_only and is_openmmlab(state, model_state):  # a whole mmpose/mmseg/mmdet model: map its heads
        state, mm_skipped, mm_notes = convert_openmmlab(state, model_state, name)
        notes += mm_notes
    state, dropped, normalise_notes = normalize_state_dict(state, model_state)
    dropped = mm_skipped + dropped
    notes += normalise_notes
    if metadata.get("preset"):
        notes.append(f"saved from preset '{metadata['preset']}'")
    prefix = _stem_prefix(model_state) or ""
    backbone = _backbone_modules(model, prefix)

    if not set(state) & set(model_state):
        raise CheckpointError(f"checkpoint {name} has no tensor of the model; {_compare(state, model_state)}")
    model_heads = [k for k in model_state if not _is_backbone(k, prefix, backbone)]
    file_heads = [k for k in state if not _is_backbone(k, prefix, backbone)]
    transfer = backbone_only or not model_heads or (
        _has_classification_head(file_heads, prefix) and not _has_classification_head(model_heads, prefix))
    if not transfer and file_heads and model_heads and not set(file_heads) & set(model_heads):
        raise CheckpointError(
            f"checkpoint {name} holds {describe_state_dict(state)}, but the model has "
            f"{describe_state_dict(model_state)}: none of the model's head tensors "
            f"({_first(model_heads, 3)}) are in the file, so the head would stay untrained. Pass "
            "backbone_only=True to load only the backbone (e.g. to fine-tune a new head)."
        )

    wanted = [k for k in state if _is_backbone(k, prefix, backbone)] if transfer else list(state)
    wanted_set = set(wanted)
    report = LoadReport(name, notes=notes, metadata=metadata)
    report.skipped = dropped + [k for k in state if k not in wanted_set]
    if transfer:  # backbone parts this model does not have (e.g. pose's single-output last fusion)
        report.skipped += [k for k in wanted if k not in model_state]
    else:
        report.unexpected = [k for k in wanted if k not in model_state]
    report.mismatched = [(k, tuple(state[k].shape), tuple(model_state[k].shape))
                         for k in wanted if k in model_state and state[k].shape != model_state[k].shape]
    if report.mismatched:
        raise _mismatch_error(name, report.mismatched, state, model_state, prefix, backbone)
    report.loaded = [k for k in model_state if k in wanted_set]
    wrong_dtype = non_float_weights({k: state[k] for k in report.loaded}, model_state)
    if wrong_dtype:
        raise _dtype_error(name, wrong_dtype)
    report.missing = [k for k in model_state if k not in wanted_set and not k.endswith("num_batches_tracked")]
    if not report.loaded:
        raise CheckpointError(f"checkpoint {name} has no backbone tensor of the model; "
                              f"{_compare(state, model_state)}")
    if strict and (report.missing or report.unexpected):
        raise CheckpointError(
            f"checkpoint {name} does not match the model exactly (strict=True): "
            f"{len(report.missing)} missing ({_first(report.missing, SHOW)}), "
            f"{len(report.unexpected)} unexpected ({_first(report.unexpected, SHOW)})."
        )
    model.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    if verbose:
        print(report.summary(), file=sys.stderr)
    return report


# ----------------------------------------------------------------------------------------------- save


def save_weights(model_or_state_dict: nn.Module | Mapping[str, Tensor], path: str | os.PathLike,
                 metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a safetensors file atomically; ``metadata`` values are stored as strings (non-strings as JSON).

    A model built by :func:`hrnet.build_model` also records its ``preset``. :func:`load_weights`
    returns the metadata in :attr:`LoadReport.metadata`.
    """
    is_model = isinstance(model_or_state_dict, nn.Module)
    state = model_or_state_dict.state_dict() if is_model else model_or_state_dict
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    text = {"format": "pt"}
    if is_model and isinstance(getattr(model_or_state_dict, "preset", None), str):
        text["preset"] = model_or_state_dict.preset
    for key, value in (metadata or {}).items():
        text[str(key)] = value if isinstance(value, str) else json.dumps(value, default=str)
    data = safetensors.torch.save(tensors, metadata=text)
    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_checkpoint(src: Source, dst: str | os.PathLike, model: nn.Module | None = None,
                       metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Convert an official or timm checkpoint to our safetensors, with a metadata JSON beside it.

    With ``model``, the file must fit it exactly (``strict=True``) and the model's complete state dict
    is written; without, the normalised tensors of the file are. ``dst.json`` records the source,
    its SHA-256, the architecture the weights hold and ``metadata``; it is also returned.
    """
    source_path = None if isinstance(src, Mapping) else _resolve(src, progress=True)
    readable = src if source_path is None else source_path
    if model is not None:
        report = load_weights(model, readable, strict=True, verbose=False)
        state, notes = model.state_dict(), report.notes
    else:
        raw, _, notes, name = _read_source(readable, progress=True)
        state, _, normalise_notes = normalize_state_dict(raw)
        notes = notes + normalise_notes
        wrong_dtype = non_float_weights(state)
        if wrong_dtype:
            raise _dtype_error(name, wrong_dtype)
    info: dict[str, Any] = {"source": "a state dict" if source_path is None else os.fspath(src)}
    if source_path is not None:
        info["source_sha256"] = _sha256(source_path)
    if isinstance(getattr(model, "preset", None), str):
        info["preset"] = model.preset
    info.update({"architecture": describe_state_dict(state), "tensors": len(state),
                 "values": sum(v.numel() for v in state.values()), "notes": notes, **(metadata or {})})
    dst = save_weights(state, dst, info)
    write_json(dst.with_suffix(".json"), info, indent=2)
    return info
