"""Fetched papers in the product: cards, paper page, windows over days, trending, search,
Atom, BibTeX and the digest open the paper and show its authors."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from defusedxml import ElementTree

from recommender import digest, store
from recommender.config import load_settings
from recommender.dumps import parse_dump_file
from recommender.ratings_io import read_ratings
from recommender.sources import day_dump
from recommender.sources.hf_daily import parse_daily_papers

from .._sources import fixture
from .._web import NEW_DAY, OLD_DAY, mails, post, user_id
from ..conftest import SAMPLE_DUMPS

HF_DAY = "2026-11-21"  # the recorded day, dated the day after the corpus's newest
SPEECH = "Sparse Mixture-of-Experts Speech Recognition at Scale"


def add_hf_day(db, day: str = HF_DAY):
    papers, _ = parse_daily_papers(fixture("hf_daily_2026-11-30.json"))
    return store.record_dump(
        db, day_dump("hf-daily", day, papers), dump_date=day, source="hf-daily"
    )


@pytest.fixture
def fetched(db):
    add_hf_day(db)
    return db


def paper_id(db, title: str) -> int:
    return db.execute("SELECT id FROM papers WHERE title = ?", [title]).fetchone()[0]


def test_cards_show_authors_and_open_the_paper_on_arxiv(ada, fetched):
    body = ada.get("/feed.json").get_json()
    assert body["window"]["kind"] == "new" and body["window"]["first_day"] == HF_DAY
    speech = next(p for p in body["papers"] if p["title"] == SPEECH)
    assert speech["authors"] == ["Mira Okafor", "Jonas Lindqvist", "Wei Zhang"]
    assert speech["arxiv_id"] == "2511.20001"
    assert speech["links"] == {
        "abs": "https://arxiv.org/abs/2511.20001",
        "pdf": "https://arxiv.org/pdf/2511.20001",
        "hf": "https://huggingface.co/papers/2511.20001",
    }
    page = ada.get("/").get_data(as_text=True)
    card = page[page.index(f'id="paper-{speech["paper_id"]}"') :].split("</article>")[0]
    assert (
        f'<a href="https://arxiv.org/abs/2511.20001" rel="noopener noreferrer">{SPEECH}</a>' in card
    )
    assert "Mira Okafor, Jonas Lindqvist, Wei Zhang" in card
    assert 'href="https://arxiv.org/pdf/2511.20001"' in card and ">PDF</a>" in card
    assert f'href="/papers/{speech["paper_id"]}">Details</a>' in card


def test_a_text_dump_card_without_a_link_opens_the_paper_page(ada, db):
    paper = ada.get("/feed.json").get_json()["papers"][0]
    assert paper["links"] == {} and paper["authors"] == []
    page = ada.get("/").get_data(as_text=True)
    assert f'<a href="/papers/{paper["paper_id"]}">{paper["title"]}</a>' in page


def test_the_feed_ranks_a_window_of_days_together(ada, fetched):
    def window(query):
        body = ada.get(f"/feed.json?{query}").get_json()
        return body["window"], {p["dump_date"] for p in body["papers"]}

    # The newest day: the four Daily Papers papers that are new (the fifth is in OLD_DAY).
    today, days = window("window=today")
    assert (today["first_day"], today["last_day"], today["candidates"]) == (HF_DAY, HF_DAY, 4)
    # Three days ending at the newest day: 19, 20 and 21 November, ranked together.
    three, days = window("window=3d")
    assert (three["first_day"], three["last_day"]) == (OLD_DAY, HF_DAY)
    counts = {d["day"]: d["new_papers"] for d in store.list_days(fetched)}
    assert three["candidates"] == counts[OLD_DAY] + counts[NEW_DAY] + 4
    assert len(days) > 1
    week, _ = window("window=week")
    assert week["candidates"] == three["candidates"]
    one, days = window(f"window={OLD_DAY}")
    assert one["kind"] == "day" and days == {OLD_DAY}
    assert ada.get("/feed.json?window=fortnight").status_code == 400
    page = ada.get("/?window=3d").get_data(as_text=True)
    assert f'Papers of <time datetime="{OLD_DAY}">{OLD_DAY}</time> to' in page


def test_the_feed_shows_what_arrived_since_the_last_visit(ada, db):
    uid = user_id(db, "ada@example.org")
    first = {p["paper_id"] for p in ada.get("/feed.json").get_json()["papers"]}
    # That visit was three days ago; the corpus arrived before it.
    three_days_ago = (date.today() - timedelta(days=3)).isoformat()
    four_days_ago = (date.today() - timedelta(days=4)).isoformat()
    db.execute("UPDATE impressions SET shown_on = ? WHERE user_id = ?", [three_days_ago, uid])
    db.execute("UPDATE dumps SET ingested_at = ?", [f"{four_days_ago}T12:00:00+00:00"])
    db.conn.commit()
    add_hf_day(db)
    body = ada.get("/feed.json").get_json()
    assert body["window"]["kind"] == "new" and body["window"]["since"] == three_days_ago
    titles = {p["title"] for p in body["papers"]}
    assert SPEECH in titles and len(titles) == 4  # the day's four new papers, nothing else
    assert not first & {p["paper_id"] for p in body["papers"]}
    page = ada.get("/").get_data(as_text=True)
    assert "New since your last visit on" in page


def test_two_dumps_of_one_day_are_one_day_in_the_picker(ada, fetched, tmp_path):
    text = parse_dump_file(SAMPLE_DUMPS / "2026-11-19_003_b22038616ce28914.txt")
    record = store.record_dump(fetched, text, dump_date=HF_DAY)
    days = [d["day"] for d in ada.get("/feed.json").get_json()["days"]]
    assert days == [HF_DAY, NEW_DAY, OLD_DAY]
    page = ada.get("/").get_data(as_text=True)
    assert page.count(f'<option value="{HF_DAY}"') == 1
    body = ada.get(f"/feed.json?window={HF_DAY}").get_json()
    assert body["window"]["candidates"] == 4 + record.new_papers


def test_the_paper_page_shows_authors_links_upvotes_and_its_days(ada, fetched):
    pid = paper_id(fetched, SPEECH)
    page = ada.get(f"/papers/{pid}").get_data(as_text=True)
    assert (
        f'<h1><a href="https://arxiv.org/abs/2511.20001" rel="noopener noreferrer">{SPEECH}' in page
    )
    assert "Mira Okafor, Jonas Lindqvist, Wei Zhang" in page
    assert 'href="https://arxiv.org/pdf/2511.20001"' in page
    assert 'href="https://huggingface.co/papers/2511.20001"' in page
    assert "48 on Hugging Face" in page and "2026-11-27" in page
    body = ada.get(f"/papers/{pid}.json").get_json()
    assert (body["arxiv_id"], body["upvotes"], body["days"]) == ("2511.20001", 48, [HF_DAY])
    # The text-dump paper met again in the fetched day: one paper, both days.
    gradient = paper_id(fetched, "Gradient Matching for Domain Generalization")
    assert ada.get(f"/papers/{gradient}.json").get_json()["days"] == [OLD_DAY, HF_DAY]


def test_search_matches_author_names(ada, fetched):
    body = ada.get("/search.json?q=Lindqvist").get_json()
    assert [p["title"] for p in body["papers"]] == [SPEECH]
    assert body["papers"][0]["links"]["abs"] == "https://arxiv.org/abs/2511.20001"


def test_trending_lists_the_most_upvoted_papers(ada, fetched):
    body = ada.get("/trending.json").get_json()
    assert [p["upvotes"] for p in body["papers"]] == [48, 17, 5]
    assert body["papers"][0]["reason"] == "▲ 48 upvotes on Hugging Face"
    page = ada.get("/trending").get_data(as_text=True)
    assert page.index(SPEECH) < page.index("Diffusion Policies Need Fewer Steps")
    assert ada.get("/trending.json?window=decade").status_code == 400
    assert ada.get("/trending.json?window=today").get_json()["since"] == HF_DAY


def test_atom_entries_carry_authors_and_open_the_paper(ada, fetched):
    post(ada, "/settings/atom", {"action": "rotate"})
    token = store.get_user_by_email(fetched, "ada@example.org")["feed_token"]
    assert token, "the Atom feed did not turn on"
    root = ElementTree.fromstring(ada.get(f"/atom/{token}.xml").data)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entry = next(
        e for e in root.findall("a:entry", ns) if e.findtext("a:title", None, ns) == SPEECH
    )
    assert [a.findtext("a:name", None, ns) for a in entry.findall("a:author", ns)] == [
        "Mira Okafor",
        "Jonas Lindqvist",
        "Wei Zhang",
    ]
    links = [
        (link.get("rel", "alternate"), link.get("href")) for link in entry.findall("a:link", ns)
    ]
    assert links == [("alternate", "https://arxiv.org/abs/2511.20001")]
    assert "PDF: https://arxiv.org/pdf/2511.20001" in entry.findtext("a:summary", None, ns)


def test_bibtex_export_is_what_zotero_reads_for_an_arxiv_paper(ada, fetched):
    pid = paper_id(fetched, SPEECH)
    post(ada, f"/papers/{pid}/rate", {"value": "like"})
    bib = ada.get("/settings/export?format=bibtex").get_data(as_text=True)
    assert "@misc{2511.20001," in bib
    for line in (
        "author = {Mira Okafor and Jonas Lindqvist and Wei Zhang},",
        "year = {2026},",
        "eprint = {2511.20001},",
        "archivePrefix = {arXiv},",
        "url = {https://arxiv.org/abs/2511.20001},",
    ):
        assert line in bib
    (record,) = read_ratings(bib, "bibtex")
    assert record.external_id == "arxiv:2511.20001"  # imports back onto the same paper
    uid = user_id(fetched, "ada@example.org")
    assert store.import_ratings(fetched, uid, [(record.external_id, "x", 1)])["unchanged"] == 1


def send_digest(db, data_dir, *, only_new_day: bool) -> tuple[str, str]:
    """Ada's digest at 07:05 UTC today (file backend): its text and HTML bodies."""
    uid = user_id(db, "ada@example.org")
    store.confirm_email(db, uid, "ada@example.org")
    if only_new_day:  # the corpus arrived long ago: the digest has the fetched day only
        db.execute(
            "UPDATE dumps SET ingested_at = '2000-01-01T00:00:00+00:00' WHERE source = 'file'"
        )
        db.conn.commit()
    now = datetime.now(UTC).replace(hour=7, minute=5)
    run = digest.send_due_digests(db, load_settings(data_dir), now=now)
    assert run.sent == 1, run.summary()
    (message,) = [m for m in mails(data_dir) if "digest" in m["Subject"]]
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    return text, message.get_body(("html",)).get_content()


def test_digest_titles_open_the_paper_and_show_authors(ada, fetched, data_dir):
    text, html = send_digest(fetched, data_dir, only_new_day=True)
    assert "   Kenji Watanabe\n   https://arxiv.org/abs/2511.20003\n" in text
    assert "   PDF: https://arxiv.org/pdf/2511.20003\n" in text
    assert re.search(rf'<a href="https://arxiv.org/abs/2511.20001" [^>]*>{SPEECH}</a>', html)
    assert "Mira Okafor, Jonas Lindqvist, Wei Zhang" in html
    assert '<a href="https://arxiv.org/pdf/2511.20001"' in html


def test_a_digest_title_without_a_source_link_opens_the_paper_page(ada, db, data_dir):
    text, html = send_digest(db, data_dir, only_new_day=False)
    pages = re.findall(r"\n   (http://127\.0\.0\.1:5000/papers/\d+)\n", text)
    assert len(pages) == 10
    assert all(f'<a href="{url}"' in html for url in pages)


def test_the_digest_covers_what_arrived_since_the_last_digest(ada, db, data_dir):
    uid = user_id(db, "ada@example.org")
    store.confirm_email(db, uid, "ada@example.org")
    db.execute("UPDATE dumps SET ingested_at = '2000-01-01T00:00:00+00:00'")
    db.conn.commit()
    settings = load_settings(data_dir)
    today = datetime.now(UTC).replace(hour=7, minute=5, second=0, microsecond=0)
    first = digest.send_due_digests(db, settings, now=today - timedelta(days=1))
    assert first.sent == 1  # yesterday's: the newest dump, as nothing arrived since
    add_hf_day(db)
    assert digest.send_due_digests(db, settings, now=today).sent == 1
    periods = db.execute(
        "SELECT g.period, count(*) FROM digests g JOIN digest_items i ON i.digest_id = g.id"
        " GROUP BY g.id ORDER BY g.period"
    ).fetchall()
    assert [n for _, n in periods] == [10, 4]
    second = db.execute(
        "SELECT p.title FROM digest_items i JOIN digests g ON g.id = i.digest_id"
        " JOIN papers p ON p.id = i.paper_id WHERE g.period = ?",
        [today.date().isoformat()],
    ).fetchall()
    assert SPEECH in {t for (t,) in second}  # only the day fetched since the last digest
