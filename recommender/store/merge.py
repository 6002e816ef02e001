"""Merging near-duplicate papers already stored (ingest links new ones; this finds the old).

A database filled before ingest recognised near-duplicates (an abbreviation in front, or a
title 95 % alike: :class:`recommender.dumps.NearTitles`) holds them as two papers. Each
pair becomes its older paper: the newer one's ratings, impressions, dumps and digest items
move to it, and it gains the ids and links it lacked. Run under the models' writer lock by
``paperfeed dedupe`` and by every refit, so a model never holds both.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlite_utils import Database

from ..dumps import NearTitles
from .db import transaction


def find_near_duplicates(db: Database) -> list[tuple[int, int]]:
    """``(kept, merged)`` paper ids: each stored paper that is a near-duplicate of an older
    one, with the older one (ids only grow, so the lower id came first)."""
    near = NearTitles()
    pairs = []
    for paper_id, title, norm, arxiv_id in db.execute(
        # a library paper is one person's private copy: never merged with another paper
        "SELECT id, title, norm_title, arxiv_id FROM papers WHERE library_of IS NULL ORDER BY id"
    ):
        found = near.find(title, norm, arxiv_id)
        if found is None:
            near.add(title, norm, arxiv_id, paper_id)
        else:
            pairs.append((int(found), paper_id))
    return pairs


def merge_near_duplicates(db: Database) -> list[dict]:
    """Merge every stored near-duplicate into its older paper, all in one transaction.

    A person who rated both keeps a like (a like on either is a like of the paper);
    the earliest impression is kept. Returns ``[{"kept", "merged", "kept_title",
    "merged_title"}]`` (empty when there is nothing to merge; nothing is written then).
    """
    pairs = find_near_duplicates(db)
    if not pairs:
        return []
    merged = []
    with transaction(db):
        for kept, dup in pairs:
            titles = dict(
                db.execute("SELECT id, title FROM papers WHERE id IN (?, ?)", [kept, dup])
            )
            _merge_paper(db, kept, dup)
            merged.append(
                {
                    "kept": kept,
                    "merged": dup,
                    "kept_title": titles[kept],
                    "merged_title": titles[dup],
                }
            )
    return merged


def _merge_paper(db: Database, kept: int, dup: int) -> None:
    args = {"kept": kept, "dup": dup, "now": datetime.now(UTC).isoformat(timespec="seconds")}
    # A moved rating is a changed one (another paper): stamped now, so a refit that asks
    # which ratings changed since its blend weights were tuned counts it (refit.py).
    db.execute(
        "INSERT INTO ratings (user_id, paper_id, value, source, created_at, updated_at)"
        " SELECT user_id, :kept, value, source, created_at, :now FROM ratings"
        " WHERE paper_id = :dup ON CONFLICT (user_id, paper_id) DO UPDATE SET"
        " value = max(value, excluded.value), updated_at = excluded.updated_at",
        args,
    )
    db.execute(
        "INSERT INTO impressions (user_id, paper_id, channel, shown_on)"
        " SELECT user_id, :kept, channel, shown_on FROM impressions WHERE paper_id = :dup"
        " ON CONFLICT (user_id, paper_id) DO UPDATE SET"
        " shown_on = min(shown_on, excluded.shown_on)",
        args,
    )
    db.execute(
        "INSERT OR IGNORE INTO dump_papers (dump_id, paper_id, position)"
        " SELECT dump_id, :kept, position FROM dump_papers WHERE paper_id = :dup",
        args,
    )
    # A digest that held both keeps one item; one that held the newer points at the older.
    db.execute(
        "UPDATE digest_items SET paper_id = :kept WHERE paper_id = :dup AND digest_id NOT IN"
        " (SELECT digest_id FROM digest_items WHERE paper_id = :kept)",
        args,
    )
    row = db.execute(
        "SELECT external_id, arxiv_id, url, pdf_url, hf_url, authors, published, upvotes,"
        " first_dump_id FROM papers WHERE id = :dup",
        args,
    ).fetchone()
    for table in ("ratings", "impressions", "dump_papers", "digest_items"):
        db.execute(f"DELETE FROM {table} WHERE paper_id = :dup", args)
    db.execute("DELETE FROM papers WHERE id = :dup", args)  # frees its unique ids first
    db.execute(
        "UPDATE papers SET external_id = coalesce(external_id, ?),"
        " arxiv_id = coalesce(arxiv_id, ?), url = coalesce(url, ?),"
        " pdf_url = coalesce(pdf_url, ?), hf_url = coalesce(hf_url, ?),"
        " authors = CASE WHEN authors IN ('', '[]') THEN ? ELSE authors END,"
        " published = coalesce(published, ?),"
        " upvotes = coalesce(max(upvotes, ?), upvotes, ?),"
        " first_dump_id = min(first_dump_id, ?) WHERE id = ?",
        [*row[:7], row[7], row[7], row[8], kept],
    )
