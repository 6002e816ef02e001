"""Durable file writes: every file paperfeed writes goes through here.

A reader (another process, or this one after a crash) sees a file's old content or its new
content, never a part: data is written to a temporary file in the same folder, flushed to
disk (``fsync``), renamed over the target (``os.replace``, atomic on POSIX), and the folder
is synced so the rename itself survives a power cut.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _synced_temp(path: Path, data: bytes, prefix: str | None, suffix: str) -> str:
    """A temp file beside ``path`` holding ``data``, on disk (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(
    path: Path,
    data: bytes,
    *,
    mode: int | None = None,
    tmp_prefix: str | None = None,
    tmp_suffix: str = ".tmp",
) -> None:
    """Replace ``path`` with ``data`` in one step (see the module docstring). The temp
    file's name (``tmp_prefix``/``tmp_suffix``) lets a folder's readers skip it and a
    sweeper find what a killed writer left."""
    path = Path(path)
    tmp = _synced_temp(path, data, tmp_prefix, tmp_suffix)
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def create_exclusive(path: Path, data: bytes) -> bool:
    """Write ``path`` with ``data`` unless it exists: the complete file appears under its
    name (``os.link`` of a synced temp file, which fails if the name is taken), so a
    process starting at the same moment never reads a part of it, and a file another
    process published is never replaced. Returns whether this call created it."""
    path = Path(path)
    tmp = _synced_temp(path, data, None, ".tmp")
    try:
        os.link(tmp, path)
        created = True
    except FileExistsError:
        created = False
    finally:
        os.unlink(tmp)
    fsync_dir(path.parent)
    return created


def atomic_write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Save ``arrays`` as an uncompressed ``.npz`` (no pickles) atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buffer.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read into memory (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save_arrays(folder: Path, prefix: str, arrays: Mapping[str, np.ndarray]) -> list[str]:
    """Write each array as its own uncompressed ``<prefix>.<key>.npy`` in ``folder`` (a key's
    ``/`` becomes ``.``), for :func:`load_arrays` to map read-only. For a staging folder:
    :func:`publish_dir` syncs the files. Returns the file names."""
    names = []
    for key, value in arrays.items():
        if "." in key:
            raise ValueError(f"array name {key!r} has a dot")
        name = f"{prefix}.{key.replace('/', '.')}.npy"
        np.save(Path(folder) / name, np.ascontiguousarray(value), allow_pickle=False)
        names.append(name)
    return names


def load_arrays(folder: Path, prefix: str) -> dict[str, np.ndarray]:
    """The arrays :func:`save_arrays` wrote, memory-mapped read-only: pages are read on first
    use and shared by every process that maps the same file (web workers hold one copy)."""
    out = {}
    for path in sorted(Path(folder).glob(f"{prefix}.*.npy")):
        key = path.name[len(prefix) + 1 : -len(".npy")].replace(".", "/")
        out[key] = np.load(path, mmap_mode="r", allow_pickle=False).view(np.ndarray)
    return out


@contextmanager
def staging_dir(parent: Path, prefix: str = ".staging-") -> Iterator[Path]:
    """A fresh folder under ``parent`` to fill before publishing it with :func:`publish_dir`;
    removed if the block fails."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def publish_dir(staging: Path, target: Path) -> None:
    """Rename a filled staging folder to ``target`` (which must not exist), durably."""
    for entry in staging.iterdir():
        if entry.is_file():
            with open(entry, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(staging)
    os.rename(staging, target)
    fsync_dir(target.parent)


def disk_status(folder: Path, min_free_bytes: int) -> dict:
    """Free space under ``folder`` (``disk_free_mb``), and ``disk_problem`` when it is
    below ``min_free_bytes``: writes (ratings, refits, the inbox) will soon fail."""
    free = shutil.disk_usage(folder).free
    status: dict = {"disk_free_mb": round(free / 2**20, 1)}
    if free < min_free_bytes:
        status["disk_problem"] = (
            f"{status['disk_free_mb']} MB free under {folder}, below the "
            f"{min_free_bytes / 2**20:g} MB of PAPERFEED_MIN_FREE_MB: free some space"
        )
    return status
