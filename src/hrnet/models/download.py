"""Registry weights on disk: download with a progress bar and resume, checksum, atomic rename, safetensors.

The cache is ``$HRNET_CACHE_DIR`` or ``~/.cache/hrnet/weights``; each registry entry gets a folder
holding the file as published and ``weights.safetensors``, its conversion (what loading reads, so a
pickle is unpickled once, safely, and never again). A download goes to ``<file>.part``; an interrupted
one is resumed with an HTTP ``Range`` request, and only a complete file whose SHA-256 matches is
renamed into place. Where the publisher gives no checksum, the digest of the first download is
recorded in ``checksums.json`` in the cache and every later download or ``hrnet weights add`` is
checked against it. ``$HRNET_WEIGHTS_MIRROR`` (a base URL) is tried before the publisher's address.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import CheckpointError
from ..io import atomic_write, write_json
from .zoo import WeightsEntry, manual_download_message

__all__ = ["weights_cache_dir", "fetch_weights", "add_weights", "cached_weights", "sha256_file", "download_file"]

CACHE_ENV = "HRNET_CACHE_DIR"
MIRROR_ENV = "HRNET_WEIGHTS_MIRROR"
CHECKSUMS = "checksums.json"
CONVERTED = "weights.safetensors"
CHUNK = 1 << 16
ATTEMPTS = 3
TIMEOUT_S = 60


class _Incomplete(Exception):
    """The server closed the connection before the whole file came."""


def weights_cache_dir() -> Path:
    """``$HRNET_CACHE_DIR`` or ``~/.cache/hrnet/weights``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hrnet" / "weights")


def cached_weights(entry: WeightsEntry) -> Path:
    """Where the converted weights of ``entry`` live (whether or not they are there yet)."""
    return weights_cache_dir() / entry.name / CONVERTED


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _recorded() -> dict[str, str]:
    path = weights_cache_dir() / CHECKSUMS
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise CheckpointError(f"the checksum record {path} is corrupt ({e}); delete it to start a new record") from e


def _check_digest(entry: WeightsEntry, digest: str, what: str) -> None:
    """Raise unless ``digest`` matches the published checksum, or the one recorded at the first download."""
    recorded = _recorded().get(entry.name)
    if entry.sha256:
        expected, source, ok = entry.sha256, "the publisher gives", digest == entry.sha256
    elif entry.sha256_prefix:
        expected = entry.sha256_prefix + "..."
        source, ok = "the file name publishes", digest.startswith(entry.sha256_prefix)
    elif recorded:
        expected, source, ok = recorded, "was recorded at its first download", digest == recorded
    else:
        return
    if not ok:
        raise CheckpointError(
            f"checksum mismatch for {entry.name}: {what} has SHA-256 {digest}, but {source} {expected}. "
            "The file is corrupt, truncated or not the released one; it was not kept, and nothing was cached.")


def _record(entry: WeightsEntry, digest: str) -> None:
    if entry.sha256 or entry.sha256_prefix:
        return
    records = _recorded()
    records.setdefault(entry.name, digest)
    write_json(weights_cache_dir() / CHECKSUMS, records, indent=1)


def _fetch_once(url: str, part: Path, label: str, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 (the registry's http(s) URLs)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part file is already complete
            return
        raise
    with response:
        if have and response.status != 206:  # the server ignored the Range: start again
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                file=sys.stderr, disable=not progress, mininterval=0.5) as bar:
            while chunk := response.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    if total is not None and part.stat().st_size < total:
        raise _Incomplete(f"{part.stat().st_size} of {total} bytes")


def download_file(url: str, part: Path, label: str = "", progress: bool = True, attempts: int = ATTEMPTS) -> Path:
    """Download ``url`` into ``part``, resuming it (HTTP ``Range``) after a cut connection, up to
    ``attempts`` times; a partial file is kept for the next call to resume."""
    part.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _ in range(attempts):
        try:
            _fetch_once(url, part, label or part.name, progress)
            return part
        except urllib.error.HTTPError as e:
            raise CheckpointError(f"cannot download {url}: HTTP {e.code} {e.reason}") from e
        except (_Incomplete, http.client.HTTPException, OSError) as e:  # cut connections, timeouts, resets
            last = e
    size = part.stat().st_size if part.exists() else 0
    if not size:  # nothing arrived: an unreachable host or a missing file, nothing to resume
        raise CheckpointError(f"cannot download {url}: {last}")
    raise CheckpointError(f"the download of {url} stopped after {size} bytes ({last}); the partial file {part} "
                          "is kept and the next attempt resumes it.")


def _convert(entry: WeightsEntry, raw: Path) -> Path:
    from .weights import convert_checkpoint

    converted = raw.parent / CONVERTED
    convert_checkpoint(raw, converted, metadata={"registry_name": entry.name, "origin": entry.origin,
                                                 "preset": entry.preset, "licence": entry.licence,
                                                 "file_name": entry.file_name})
    return converted


def fetch_weights(entry: WeightsEntry, progress: bool = True, force: bool = False) -> Path:
    """The converted safetensors file of ``entry``, downloading and converting it the first time.

    A share-page-only entry that was never added raises :class:`CheckpointError` with the paragraph
    of :func:`~hrnet.models.zoo.manual_download_message`; a download whose checksum does not match
    leaves nothing in the cache.
    """
    converted = cached_weights(entry)
    if converted.is_file() and not force:
        return converted
    raw = converted.parent / entry.file_name
    if not raw.is_file():
        mirror = os.environ.get(MIRROR_ENV)
        direct = list(entry.urls[:1]) if entry.downloadable else []
        urls = ([f"{mirror.rstrip('/')}/{entry.file_name}"] if mirror else []) + direct
        if not urls:
            raise CheckpointError(manual_download_message(entry, str(converted.parent)))
        part = raw.with_name(raw.name + ".part")
        errors = []
        for url in urls:
            try:
                download_file(url, part, entry.name, progress)
                break
            except CheckpointError as e:
                errors.append(str(e))
        else:
            raise CheckpointError(" ".join(errors))
        digest = sha256_file(part)
        try:
            _check_digest(entry, digest, f"the file downloaded from {url}")
        except CheckpointError:
            part.unlink()
            raise
        os.replace(part, raw)
        _record(entry, digest)
    return _convert(entry, raw)


def add_weights(entry: WeightsEntry, file: str | os.PathLike) -> Path:
    """Register a hand-downloaded ``file`` as ``entry``: check its checksum, copy it into the cache and
    convert it. Returns the converted safetensors file."""
    file = Path(file)
    if not file.is_file():
        raise CheckpointError(f"{file} does not exist (expected the downloaded {entry.file_name})")
    digest = sha256_file(file)
    _check_digest(entry, digest, str(file))
    raw = cached_weights(entry).parent / entry.file_name
    with open(file, "rb") as src, atomic_write(raw, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)
    _record(entry, digest)
    return _convert(entry, raw)
