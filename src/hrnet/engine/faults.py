"""What keeps a training run safe from its surroundings: one run per output folder, signals that
stop at an iteration boundary, stale temporary files, and a full disk.

- :class:`RunLock` holds an exclusive ``fcntl.flock`` on ``<output_dir>/run.lock`` for the run's life.
  The kernel drops the lock when the process ends, however it ends (even ``kill -9``), so a lock left
  by a dead run never blocks the next one; the file records who holds it (pid, host, start time,
  command) so that a refused run can name the holder.
- :class:`StopSignals` turns SIGTERM and SIGINT into a flag that the trainer reads between iterations,
  so that it can save a resumable checkpoint before exiting; a second signal acts immediately.
- :func:`remove_stale_temp_files` deletes the temporary files of interrupted atomic writes
  (``.last.pt.*.tmp``); under the lock no other writer can own them.
- :func:`disk_full_error` turns an ``ENOSPC`` into one paragraph naming the file and what was kept.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import HRNetError

__all__ = [
    "LOCK_FILE",
    "RunLock",
    "StopSignals",
    "TrainingInterrupted",
    "remove_stale_temp_files",
    "is_disk_full",
    "disk_full_error",
]

LOCK_FILE = "run.lock"
#: ``hrnet.io.atomic_write`` names its temporary files ``.<name>.<8 random characters>.tmp``
TEMP_FILE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # exit codes 143 and 130


class TrainingInterrupted(HRNetError):
    """Training stopped on a signal after saving a resumable checkpoint; ``exit_code`` is 128 + signal."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


# ------------------------------------------------------------------------------------------------ lock


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _describe_holder(record: dict[str, Any]) -> str:
    started = record.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    command = record.get("command")
    text = f"process {record.get('pid', '?')} on host {record.get('host', '?')}, started {when}"
    return f"{text} ({command})" if command else text


class RunLock:
    """An exclusive lock on ``output_dir`` (``<output_dir>/run.lock``); :meth:`acquire` raises
    :class:`HRNetError` naming the holder when another live process has it."""

    def __init__(self, output_dir: str | Path) -> None:
        self.path = Path(output_dir) / LOCK_FILE
        self._fd: int | None = None

    def _read_record(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(self.path.read_text() or "{}")
            if isinstance(record, dict):
                return record
        return {}

    def _refuse(self, record: dict[str, Any]) -> HRNetError:
        return HRNetError(
            f"output_dir {self.path.parent} is in use by another training run: {_describe_holder(record)} "
            f"holds {self.path}. Two runs writing one folder would mix their checkpoints and logs. Wait for "
            f"it to finish (or stop it: SIGTERM saves a checkpoint), then resume with --resume; or choose "
            f"another output_dir=..."
        )

    def acquire(self) -> str | None:
        """Take the lock; returns a note about a stale lock left by a dead run, if there was one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            import fcntl  # POSIX only; without it the record decides, as below

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._refuse(self._read_record()) from None
        except (OSError, ImportError) as e:  # a filesystem without flock (some network mounts): trust the record
            if isinstance(e, OSError) and e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise
            record = self._read_record()
            same_host = record.get("host") == socket.gethostname()
            if record.get("pid") and (not same_host or _process_alive(int(record["pid"]))):
                os.close(fd)
                raise self._refuse(record) from None
        self._fd = fd
        previous = self._read_record()
        note = None
        if previous.get("pid"):  # a clean release empties the file: this one's holder died
            note = f"removed the stale lock of a run that ended without releasing it ({_describe_holder(previous)})"
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": round(time.time(), 3),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        return note

    def release(self) -> None:
        """Empty the record and drop the lock (the file stays: removing it would race a new holder)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None


# ----------------------------------------------------------------------------------------- temp files


def remove_stale_temp_files(output_dir: str | Path) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes under ``output_dir``; returns them.

    Call it only while holding :class:`RunLock`: then no other process can be writing them."""
    removed = []
    for root, _, files in os.walk(output_dir):
        for name in files:
            if TEMP_FILE.match(name):
                path = Path(root) / name
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


# -------------------------------------------------------------------------------------------- signals


class StopSignals:
    """While active, SIGTERM and SIGINT set :attr:`signum` instead of ending the process; the loop
    stops at the next iteration boundary. A second signal restores the default action and re-raises
    it, so a stuck run can still be stopped at once. Only the main thread can install handlers; in
    other threads this does nothing."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # second signal: stop now
            self.restore()
            signal.raise_signal(signum)
            return
        self.signum = signum
        name = signal.Signals(signum).name
        print(f"\nreceived {name}: stopping after this iteration to save a checkpoint "
              f"(send it again to stop at once)", file=sys.stderr, flush=True)

    def install(self) -> StopSignals:
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


# ----------------------------------------------------------------------------------------- full disk


def is_disk_full(error: BaseException) -> bool:
    """True for an ``ENOSPC``/``EDQUOT`` ``OSError``, also when wrapped by torch's writer (as the cause
    or context of its ``RuntimeError``)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full_error(error: BaseException, output_dir: Path, kept: str) -> HRNetError:
    """One paragraph for a full disk: what could not be written, the space left, and what was kept."""
    filename = None
    seen = set()
    while error is not None and id(error) not in seen and filename is None:
        seen.add(id(error))
        filename = getattr(error, "filename", None)
        error = error.__cause__ or error.__context__
    where = f" while writing {filename}" if filename else ""
    free = ""
    with contextlib.suppress(OSError):
        stat = os.statvfs(output_dir)
        free = f" ({stat.f_bavail * stat.f_frsize / 2**20:.0f} MiB free there now)"
    return HRNetError(
        f"training stopped: the disk holding {output_dir} is full{where}{free}. {kept} Free some space, "
        f"then continue with the same command and --resume."
    )
