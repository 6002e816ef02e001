"""All of paperfeed's SQL lives in this package.

``db`` opens connections and applies migrations; each other module holds the
queries of one part of the product (``papers``: papers, dumps and search).
Callers get plain dicts and ids back, never cursors.
"""

from .db import connect, migrate, migrations_dir, open_db, pending_migrations, transaction
from .papers import (
    DumpRecord,
    StoreError,
    count_papers,
    dump_papers,
    find_dump_by_hash,
    get_paper,
    latest_dump,
    list_dumps,
    record_dump,
    search_papers,
)

__all__ = [
    "DumpRecord",
    "StoreError",
    "connect",
    "count_papers",
    "dump_papers",
    "find_dump_by_hash",
    "get_paper",
    "latest_dump",
    "list_dumps",
    "migrate",
    "migrations_dir",
    "open_db",
    "pending_migrations",
    "record_dump",
    "search_papers",
    "transaction",
]
