"""Databases as an older release left them, for upgrade tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from recommender import store
from recommender.store.db import migrations_dir


def database_before(tmp_path: Path, pattern: str):
    """A database migrated with only the migrations matching ``pattern`` (e.g. ``000*.sql``)."""
    before = tmp_path / "before"
    before.mkdir()
    for sql in sorted(migrations_dir().glob(pattern)):
        shutil.copy(sql, before)
    db = store.connect(tmp_path / "paperfeed.db")
    store.migrate(db, before)
    return db
