"""Ingest dump files: parse and validate every file, then store them all in one transaction.

All files named on one call are parsed before anything is written, so a
malformed file among several leaves the database exactly as it was; and the
dumps of one call are stored together (one commit), so a failure while storing
(a full disk, a kill) leaves none of them, never the first few.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlite_utils import Database
from tqdm import tqdm

from . import store
from .dumps import DumpError, ParsedDump, detect_format, parse_dump, parse_dump_file

log = logging.getLogger(__name__)

DUMP_SUFFIXES = {".txt", ".jsonl", ".ndjson", ".xml", ".atom"}
# Show a progress bar when a call stores more papers than this.
PROGRESS_THRESHOLD = 5000


class IngestError(Exception):
    """One or more files could not be parsed; nothing was ingested."""

    def __init__(self, errors: list[DumpError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True)
class IngestResult:
    record: store.DumpRecord
    skipped_lines: int
    duplicates_in_dump: int
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            **self.record.as_dict(),
            "skipped_lines": self.skipped_lines,
            "duplicates_in_dump": self.duplicates_in_dump,
            "warnings": list(self.warnings),
        }


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the dump files inside folders (sorted, hidden ones skipped)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file()
                    and p.suffix.lower() in DUMP_SUFFIXES
                    and not p.name.startswith(".")
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


def parse_file(file: Path, read: Callable[[], bytes] | None = None) -> ParsedDump:
    """Parse one file (its bytes from ``read`` if given: the inbox reads without following
    links); every failure, expected or not, is a :class:`DumpError` naming it."""
    try:
        if read is None:
            return parse_dump_file(file)
        data = read()
        return parse_dump(data, source=file.name, fmt=detect_format(file, data))
    except DumpError:
        raise
    except OSError as exc:
        raise DumpError(f"cannot read the file: {exc.strerror}", source=file.name) from None
    except Exception as exc:  # a parser bug must not crash the command or jam the inbox
        log.exception("cannot parse %s", file)
        raise DumpError(
            f"cannot parse the file ({type(exc).__name__}: {str(exc)[:200]})", source=file.name
        ) from None


def parse_files(files: list[Path]) -> list[ParsedDump]:
    """Parse every file; raise :class:`IngestError` listing every file that failed."""
    parsed, errors = [], []
    for file in files:
        try:
            parsed.append(parse_file(file))
        except DumpError as exc:
            errors.append(exc)
    if errors:
        raise IngestError(errors)
    return parsed


def ingest_paths(
    db: Database,
    paths: Iterable[str | Path],
    *,
    dump_date: date | str | None = None,
    progress: bool = False,
) -> list[IngestResult]:
    """Parse then store the dumps at ``paths`` (files or folders), in file-name order.

    Raises :class:`IngestError` (nothing stored) if any file is malformed. The dumps
    are stored in one transaction: all of them, or (on any error) none.
    """
    dumps = parse_files(expand_paths(paths))
    total = sum(len(d.papers) for d in dumps)
    results = []
    with (
        tqdm(
            total=total,
            unit="paper",
            desc="ingest",
            disable=not progress or total < PROGRESS_THRESHOLD,
        ) as bar,
        store.transaction(db),
    ):
        for dump in dumps:
            record = store.record_dump(db, dump, dump_date=dump_date, progress=bar.update)
            results.append(
                IngestResult(
                    record, len(dump.skipped_lines), dump.duplicates_in_dump, dump.warnings
                )
            )
    return results
