"""Connections and migrations.

The schema comes only from ``migrations/NNNN_name.sql``, applied in order with
:class:`sqlite_utils.Migrations`: each file runs in its own transaction with
the record that it ran, so a failing migration leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlite_utils import Database, Migrations

#: How long a write waits for another process's lock, for a connection opened without a
#: ``busy_timeout`` (callers with :class:`~recommender.config.Settings` pass
#: ``settings.busy_timeout``: PAPERFEED_DB_BUSY_TIMEOUT, read once with the settings).
BUSY_TIMEOUT_MS = 5000
MIGRATION_SET = "paperfeed"


def migrations_dir() -> Path:
    """The folder of ``.sql`` migrations: the checkout's, else the installed copy."""
    here = Path(__file__).resolve().parents[2] / "migrations"
    if here.is_dir():
        return here
    installed = Path(sys.prefix) / "share" / "paperfeed" / "migrations"
    if installed.is_dir():
        return installed
    raise FileNotFoundError(f"no migrations folder at {here} or {installed}")


def busy_timeout_ms(conn: sqlite3.Connection) -> int:
    """Milliseconds a write on ``conn`` waits for a lock another process holds: the
    connection's own ``busy_timeout``, set by :func:`connect`."""
    return conn.execute("PRAGMA busy_timeout").fetchone()[0]


def is_busy(exc: BaseException) -> bool:
    """Whether a database error means another connection holds the lock."""
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


def is_disk_full(exc: BaseException) -> bool:
    """Whether a database error means the disk (or its quota) is full (SQLITE_FULL)."""
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) == 13 or "disk is full" in str(exc)
    )


def connect(path: str | Path, *, busy_timeout: float | None = None) -> Database:
    """Open the database file with WAL, foreign keys and a busy timeout: ``busy_timeout``
    seconds (``settings.busy_timeout``), else :data:`BUSY_TIMEOUT_MS`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wait = BUSY_TIMEOUT_MS if busy_timeout is None else int(busy_timeout * 1000)
    conn = sqlite3.connect(str(path), timeout=wait / 1000, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={wait}")
    return Database(conn)


def select(db: Database, sql: str, params: Sequence = ()) -> list[dict]:
    """A SELECT's rows as dicts.

    ``Database.query`` wraps every statement in a savepoint, so that a statement
    which returns no rows can be rolled back before it complains: two extra
    statements, and a transaction, on every read. The store's reads are fixed
    SELECTs, so they skip the guard (a tenth of a page's database time).
    """
    cursor = db.execute(sql, list(params))
    keys = [column[0] for column in cursor.description]
    return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]


def _split_statements(sql: str) -> list[str]:
    """Split a script into statements (triggers included) without executescript.

    ``executescript`` commits first, which would break the per-migration
    transaction that :class:`Migrations` wraps around each file.
    """
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end: {buffer.strip()[:80]!r}")
    return statements


def build_migrations(folder: Path | None = None) -> Migrations:
    """One registered migration per SQL file, named by its file stem, in file order."""
    folder = folder or migrations_dir()
    migrations = Migrations(MIGRATION_SET)
    for sql_file in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        statements = _split_statements(sql_file.read_text(encoding="utf-8"))

        def apply(db: Database, statements: list[str] = statements, name=sql_file.name) -> None:
            for statement in statements:
                db.execute(statement)
            # Foreign keys are off while migrating (see migrate): check them before commit.
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise sqlite3.IntegrityError(f"{name} breaks foreign keys: {broken[:5]}")

        migrations(name=sql_file.stem)(apply)
    return migrations


def migrate(db: Database, folder: Path | None = None) -> list[str]:
    """Apply pending migrations; return the names applied (empty if none)."""
    migrations = build_migrations(folder)
    pending = [m.name for m in migrations.pending(db)]
    if not pending:
        return []
    # A migration may rebuild a table (SQLite's 12-step ALTER TABLE); with foreign keys
    # on, dropping the old table would cascade-delete the rows that point at it. The
    # pragma only takes effect outside a transaction; each migration checks the keys.
    if db.conn.in_transaction:
        raise RuntimeError("migrate() needs a connection with no open transaction")
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        migrations.apply(db)
    finally:
        db.execute("PRAGMA foreign_keys=ON")
    return pending


def pending_migrations(db: Database, folder: Path | None = None) -> list[str]:
    return [m.name for m in build_migrations(folder).pending(db)]


def open_db(path: str | Path, *, busy_timeout: float | None = None) -> Database:
    """Connect and migrate: what every command does first."""
    db = connect(path, busy_timeout=busy_timeout)
    migrate(db)
    return db


def _begin_immediate(conn: sqlite3.Connection, wait_ms: int | None = None) -> None:
    """``BEGIN IMMEDIATE``, waiting for another writer in short steps that grow.

    SQLite's own busy handler backs off in steps that grow to 100 ms, so a writer
    that finds the lock taken for a millisecond often sleeps 50-100 ms: the tail
    latency of every like under concurrent use. We poll every 0.5-2 ms for the first
    0.1 s, then back off to 50 ms steps (a lock held for seconds: a long transaction in
    another process), up to ``wait_ms`` (default: the connection's busy timeout), then
    report SQLite's "database is locked".
    """
    full = busy_timeout_ms(conn)
    wait_ms = full if wait_ms is None else wait_ms
    conn.execute("PRAGMA busy_timeout=0")
    try:
        started = time.monotonic()
        deadline = started + wait_ms / 1000
        pause = 0.0005
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                now = time.monotonic()
                if now >= deadline:
                    raise
            cap = 0.002 if now - started < 0.1 else 0.05
            time.sleep(min(pause, max(deadline - now, 0)))
            pause = min(pause * 2, cap)
    finally:
        conn.execute(f"PRAGMA busy_timeout={full}")


# Connections inside a transaction() block: a nested block joins the outer transaction
# (one commit at the outer end), so a caller can make several store writes all or nothing.
_OPEN: set[int] = set()


@contextlib.contextmanager
def transaction(db: Database, *, wait_ms: int | None = None) -> Iterator[Database]:
    """A write transaction that takes the write lock up front (BEGIN IMMEDIATE).

    Deferred transactions that read then write can fail with SQLITE_BUSY when
    another writer got in between; IMMEDIATE waits for the busy timeout instead.
    Inside another ``transaction(db)`` block this one is part of the outer one.
    """
    key = id(db.conn)
    if key in _OPEN:
        yield db
        return
    _begin_immediate(db.conn, wait_ms)
    _OPEN.add(key)
    try:
        yield db
    except BaseException:
        _OPEN.discard(key)
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    else:
        _OPEN.discard(key)
        db.conn.execute("COMMIT")


def database_file(db: Database) -> str:
    """The path of the database's main file ('' for an in-memory one): part of the key of
    anything kept across requests, so two databases never share a value."""
    return db.execute("PRAGMA database_list").fetchone()[2]
