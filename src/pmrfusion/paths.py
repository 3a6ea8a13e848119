"""Output paths: checked before any work, written atomically and durably.

- `check_output_dir` / `check_output_file`: a run never fails at the end for an output path it
  could have refused at the start (file vs folder, writable, free space, a test file). They
  create nothing.
- `atomic_write` (and `atomic_write_bytes`, `atomic_write_text`): the one way results,
  checkpoints and pages are written: a temporary file in the same folder, fsynced, renamed over
  the target, then the folder fsynced; never a half-written file at the target, and the file
  gets mode 0o666 minus the user's umask. A failed write (disk full, a folder in the way) raises
  `WriteError`, an `OSError` and a `PMRFusionError` naming the file (one `error:` line on the CLI).
- `run_folder`: held by a run while it writes into a folder; the first run to hold it removes the
  temporary files a run killed in the middle of `atomic_write` left behind (`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import tomllib

from pmrfusion.errors import PMRFusionError

MIN_FREE_BYTES = 16 * 2**20  # refuse an output location with less free space than this
RUN_LOCK = ".pmrfusion-run.lock"  # see `run_folder`
# The names of our temporary files: atomic_write's `.<name>.<8 random>.tmp`, check_output_dir's test file.
_TEMP_NAMES = (
    re.compile(r"\..+\.[a-z0-9_]{8}\.tmp"),
    re.compile(r"\.pmrfusion-write-test\.[a-z0-9_]{8}"),
)


class WriteError(OSError, PMRFusionError):
    """A file could not be written (disk full, no permission, a folder in its place)."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def _existing_ancestor(path: Path) -> Path:
    p = path.absolute()
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def _check_writable_dir(folder: Path, what: str, min_free: int) -> None:
    if not folder.is_dir():
        raise PMRFusionError(f"{what}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PMRFusionError(f"{what}: {folder} is not writable")
    try:
        free = shutil.disk_usage(folder).free
    except OSError as e:
        raise PMRFusionError(f"{what}: cannot use {folder}: {e.strerror or e}") from None
    if free < min_free:
        raise PMRFusionError(f"{what}: only {free / 2**20:.1f} MiB free on the disk of {folder}")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".pmrfusion-write-test.")
    except OSError as e:
        raise PMRFusionError(f"{what}: cannot create a file in {folder}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(tmp)


def check_output_dir(path: str | os.PathLike, what: str = "--out", min_free: int = MIN_FREE_BYTES) -> Path:
    """`path` is, or can become, a writable folder on a disk with free space. Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PMRFusionError(f"{what}: {path} exists and is not a folder")
    base = _existing_ancestor(path)
    if base != path.absolute() and not base.is_dir():
        raise PMRFusionError(f"{what}: {path} cannot be created: {base} is a file")
    _check_writable_dir(base, what, min_free)
    return path


def check_output_file(path: str | os.PathLike, what: str = "--save", min_free: int = MIN_FREE_BYTES) -> Path:
    """`path` is, or can become, a writable file (not a folder) on a disk with free space."""
    path = Path(path)
    if path.is_dir():
        raise PMRFusionError(f"{what}: {path} is a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise PMRFusionError(f"{what}: {path} is not writable")
    check_output_dir(path.parent if str(path.parent) else Path("."), what, min_free)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable (no-op where folders cannot be opened or fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """`write(fh)` into a temporary file in `path`'s folder, fsync it, rename it over `path`,
    fsync the folder. On any error (or Ctrl-C) the temporary file is removed and `path` is
    untouched; an `OSError` is raised as `WriteError` ("cannot write PATH: reason")."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(e.errno, f"cannot write {path}: {e.strerror or e}") from e
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`text` as UTF-8, newlines as given, written by `atomic_write`."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """`rows` (dicts with the same keys, the first row's order) as CSV with a header, by `atomic_write`."""
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def remove_stale_temps(folder: str | os.PathLike, names: Iterable[str] | None = None) -> list[Path]:
    """Remove our temporary files (see `atomic_write`) from `folder`, optionally only those of the
    target files `names`; returns what was removed. Call it only while no other process writes there
    (`run_folder` makes sure)."""
    folder = Path(folder)
    wanted = None if names is None else {f".{n}." for n in names}
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if not entry.is_file(follow_symlinks=False):
                continue
            if not any(p.fullmatch(entry.name) for p in _TEMP_NAMES):
                continue
            if wanted is not None and not any(entry.name.startswith(w) for w in wanted):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def run_folder(folder: str | os.PathLike, subfolders: Iterable[str] = ()) -> Iterator[list[Path]]:
    """Hold FOLDER/.pmrfusion-run.lock (a shared fcntl lock) while a run writes into `folder`. When no
    other run holds it, the temporary files a killed run left in `folder` and its `subfolders` are
    removed first; yields the removed paths. Creates `folder`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise WriteError(e.errno, f"cannot write {folder / RUN_LOCK}: {e.strerror or e}") from e
    try:
        removed: list[Path] = []
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # no other run writes here: clean up
            removed = remove_stale_temps(folder)
            for sub in subfolders:
                removed += remove_stale_temps(folder / sub)
        except BlockingIOError:
            pass
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield removed
    finally:
        os.close(fd)  # releases the lock


__all__ = [
    "RUN_LOCK",
    "WriteError",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_csv",
    "atomic_write_text",
    "check_output_dir",
    "check_output_file",
    "fsync_dir",
    "remove_stale_temps",
    "run_folder",
]


def read_toml(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The TOML file `path` (a `what`, e.g. "experiment file") as a dict; a missing or unreadable
    file is one `PMRFusionError` line naming it."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PMRFusionError(f"{what} {path} not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PMRFusionError(f"cannot read {what} {path}: {e}") from None
