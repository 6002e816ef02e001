"""Ratings to and from CSV, JSON and BibTeX."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.ratings_io import (
    FORMATS,
    RatingRecord,
    RatingsFormatError,
    guess_format,
    read_ratings,
    write_ratings,
)

RECORDS = [
    RatingRecord(
        "Deep Kernels, Revisited",
        1,
        "2401.00001",
        "https://arxiv.org/abs/2401.00001",
        ("Ada Lovelace", "Alan Turing"),
        "2026-11-20T07:00:00+00:00",
    ),
    RatingRecord('A "quoted" title; with, commas', -1),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips(fmt):
    assert read_ratings(write_ratings(RECORDS, fmt), fmt) == RECORDS


words = st.text(st.characters(categories=("L", "N"), max_codepoint=0x2FF), min_size=1, max_size=8)
titles = st.lists(words, min_size=1, max_size=6).map(" ".join)
records = st.builds(
    RatingRecord,
    title=titles,
    value=st.sampled_from([1, -1]),
    external_id=st.one_of(st.none(), words),
    authors=st.lists(titles, max_size=3).map(tuple),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(records, max_size=6), st.sampled_from(FORMATS))
def test_any_ratings_round_trip(items, fmt):
    assert read_ratings(write_ratings(items, fmt), fmt) == items


def test_csv_errors_name_the_line():
    text = "title,rating\nGood paper,like\n\nBad paper,meh\n"
    with pytest.raises(RatingsFormatError, match=r"^up\.csv:4: rating must be like or dislike"):
        read_ratings(text, "csv", source="up.csv")
    with pytest.raises(RatingsFormatError, match=r"up\.csv:1: the header has no rating column"):
        read_ratings("title\nx\n", "csv", source="up.csv")
    with pytest.raises(RatingsFormatError, match=r":3: the title is empty"):
        read_ratings("title,rating\nA,like\n,like\n", "csv")


def test_json_errors_name_the_line():
    with pytest.raises(RatingsFormatError, match=r"^f\.json:3: not valid JSON"):
        read_ratings(
            '{"ratings": [\n  {"title": "A", "rating": "like"},\n  oops\n]}',
            "json",
            source="f.json",
        )
    text = '{"ratings": [\n  {"title": "A", "rating": "like"},\n  {"rating": "like"}\n]}'
    with pytest.raises(RatingsFormatError, match=r"f\.json:3: rating 2 has no title"):
        read_ratings(text, "json", source="f.json")


def test_bibtex_errors_name_the_line():
    text = "@misc{a,\n  title = {Fine},\n}\n\n@misc{b,\n  title = {Never closed,\n"
    with pytest.raises(RatingsFormatError, match=r"^r\.bib:6: a '\{' is never closed"):
        read_ratings(text, "bibtex", source="r.bib")
    with pytest.raises(RatingsFormatError, match=r"r\.bib:2: expected '='"):
        read_ratings("@article{x,\n  title {A}\n}", "bibtex", source="r.bib")


def test_a_reference_managers_bibtex_imports_as_likes():
    text = """% exported by a reference manager
@string{ icml = "ICML" }
@comment{ jabref-meta: x }
@inproceedings{ho2020,
  author = "Ho, Jonathan and Jain, Ajay",
  title = {{Denoising} Diffusion Probabilistic Models},
  booktitle = icml # " 2020",
  year = 2020,
}
"""
    assert read_ratings(text, "bibtex") == [
        RatingRecord(
            "Denoising Diffusion Probabilistic Models",
            1,
            None,
            None,
            ("Ho, Jonathan", "Jain, Ajay"),
        )
    ]


def test_the_format_is_guessed_from_the_name_then_the_content():
    assert guess_format("x.CSV", "") == "csv"
    assert guess_format("refs.bib", "") == "bibtex"
    assert guess_format("upload", '  {"ratings": []}') == "json"
    assert guess_format("upload", "@misc{") == "bibtex"
    assert guess_format("upload", "title,rating") == "csv"
