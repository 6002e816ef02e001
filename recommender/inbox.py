"""The inbox folder, handled so that nothing planted in it reaches outside it.

Anyone who can write into the inbox could plant symbolic links there: ``inbox/x.jsonl``
pointing at a file elsewhere (which would be ingested as papers), or
``inbox/failed/bad.txt.error.txt`` pointing at a file the error text would overwrite.
So every operation here goes through a file descriptor of the inbox folder itself:
entries are listed without following links, a dump is opened with ``O_NOFOLLOW`` and
read only if it is a regular file, ``failed/`` and ``processed/`` are opened with
``O_NOFOLLOW`` (a link there is refused), files are moved by ``rename`` between those
descriptors (a rename moves a link, never its target), and an error note is written to a
new temp file and renamed over its name (which replaces a planted link instead of
writing through it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .dumps import DumpError, read_dump_fd

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class InboxError(OSError):
    """The inbox or one of its folders is not a plain folder (a link, a file)."""


@dataclass(frozen=True)
class Entry:
    """A file waiting in the inbox, as listed (its lstat), before it is opened."""

    name: str
    is_link: bool
    mtime: float


def _open_dir(name: str, dir_fd: int | None, *, create: bool) -> int:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=dir_fd)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            problem = f"{name} is not a plain folder (a link?): refused"
            raise InboxError(exc.errno, problem) from None
        raise


class Inbox:
    """The inbox folder, open: list, read, and move its files without following links."""

    def __init__(self, folder: Path):
        Path(folder).mkdir(parents=True, exist_ok=True)
        # The inbox itself may be a configured link (PAPERFEED_INBOX_DIR); what is in it may not.
        self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.folder = Path(folder)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Inbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def entries(self, suffixes: set[str]) -> Iterator[Entry]:
        """Dump-named entries that are files or links (links are reported, never followed)."""
        with os.scandir(self.fd) as listing:
            for entry in listing:
                if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in suffixes:
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    yield Entry(entry.name, stat.S_ISLNK(st.st_mode), st.st_mtime)

    def read(self, name: str) -> bytes:
        """The bytes of ``name`` if it is a regular file right in the inbox; :class:`DumpError`
        for a link or anything else (a FIFO, a device)."""
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DumpError(
                    "is a symbolic link: the inbox takes only regular files inside it",
                    source=name,
                ) from None
            raise DumpError(f"cannot read the file: {exc.strerror}", source=name) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise DumpError("is not a regular file: refused", source=name)
            os.set_blocking(fd, True)
            return read_dump_fd(fd, source=name)
        finally:
            os.close(fd)

    def move(self, name: str, folder: str) -> str:
        """Move ``name`` into ``folder`` (``failed``/``processed``), never over an earlier
        entry; returns the name it got there."""
        target_fd = _open_dir(folder, self.fd, create=True)
        try:
            target = self._free_name(name, target_fd)
            os.rename(name, target, src_dir_fd=self.fd, dst_dir_fd=target_fd)
            os.fsync(target_fd)
            return target
        finally:
            os.close(target_fd)

    def write_note(self, folder: str, name: str, text: str) -> None:
        """Write ``folder/name`` with ``text``: a new temp file renamed over the name, so a
        link planted under that name is replaced, not written through."""
        folder_fd = _open_dir(folder, self.fd, create=True)
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=folder_fd,
            )
            try:
                os.write(fd, text.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
            os.fsync(folder_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=folder_fd)
            raise
        finally:
            os.close(folder_fd)

    @staticmethod
    def _free_name(name: str, folder_fd: int) -> str:
        def taken(candidate: str) -> bool:
            try:
                os.stat(candidate, dir_fd=folder_fd, follow_symlinks=False)
            except FileNotFoundError:
                return False
            return True

        if not taken(name):
            return name
        stem, suffix = os.path.splitext(name)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        candidate = f"{stem}.{stamp}{suffix}"
        while taken(candidate):
            candidate = f"{stem}.{stamp}-{secrets.token_hex(3)}{suffix}"
        return candidate
