"""Fetching Hugging Face Daily Papers and arXiv from a real loopback server.

No test reaches the internet: PAPERFEED_HF_API_URL and PAPERFEED_ARXIV_API_URL point
at tests/_sources.FixtureServer, which serves fixtures in the APIs' formats
(tests/fixtures/sources/) and the failures the real ones have.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from recommender import jobs, sources, store
from recommender.cli import cli
from recommender.config import load_settings
from recommender.dumps import parse_dump_file
from recommender.sources.http import PoliteClient

from ._sources import FixtureServer, Reply, fixture
from .conftest import SAMPLE_DUMPS, snapshot

DAY = "2026-11-30"
HF_PATH = f"/api/daily_papers?date={DAY}"


@pytest.fixture
def server(monkeypatch):
    srv = FixtureServer()
    monkeypatch.setenv("PAPERFEED_HF_API_URL", srv.url)
    monkeypatch.setenv("PAPERFEED_ARXIV_API_URL", srv.url)
    monkeypatch.setenv("PAPERFEED_ARXIV_CATEGORIES", "cs.LG,cs.CL")
    monkeypatch.setenv("PAPERFEED_ARXIV_DELAY", "0.2")
    monkeypatch.setenv("PAPERFEED_ARXIV_PAGE_SIZE", "2")
    monkeypatch.setenv("PAPERFEED_FETCH_BACKOFF", "0.01")
    monkeypatch.setenv("PAPERFEED_FETCH_MAX_WAIT", "0.3")
    monkeypatch.setenv("PAPERFEED_FETCH_TIMEOUT", "0.5")
    monkeypatch.setenv("PAPERFEED_FETCH_RETRIES", "2")
    yield srv
    srv.close()


def run(data_dir, *args):
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])
    return result


def papers(db) -> list[dict]:
    rows = db.execute(
        "SELECT title, arxiv_id, external_id, url, pdf_url, hf_url, authors, published, upvotes"
        " FROM papers ORDER BY id"
    ).fetchall()
    keys = ["title", "arxiv_id", "external_id", "url", "pdf_url", "hf_url", "authors"]
    keys += ["published", "upvotes"]
    return [dict(zip(keys, row, strict=True)) for row in rows]


def test_a_day_of_one_paper_says_one_paper(server, data_dir):
    one = json.loads(fixture("hf_daily_2026-11-30.json"))[:1]
    server.script(HF_PATH, [Reply(body=json.dumps(one).encode())])
    result = run(data_dir, "fetch", "hf-daily", "--date", DAY)
    assert f"hf-daily {DAY}: 1 paper, 1 new, 0 already known" in result.output


def stored(db) -> dict:
    """The rows a fetch may add (the ledger aside)."""
    return {k: v for k, v in snapshot(db).items() if k != "fetches"}


def test_fetching_an_hf_day_stores_its_papers_with_ids_authors_and_links_dated_that_day(
    server, data_dir
):
    server.script(HF_PATH, [Reply(body=fixture("hf_daily_2026-11-30.json"))])
    first = run(data_dir, "fetch", "hf-daily", "--date", DAY)
    assert first.exit_code == 0, first.output
    assert "5 papers, 5 new, 0 already known" in first.output
    assert "1 item without a title skipped" in first.output
    db = store.connect(data_dir / "paperfeed.db")
    rows = papers(db)
    assert rows[0] == {
        "title": "Sparse Mixture-of-Experts Speech Recognition at Scale",
        "arxiv_id": "2511.20001",
        "external_id": "arxiv:2511.20001",
        "url": "https://arxiv.org/abs/2511.20001",
        "pdf_url": "https://arxiv.org/pdf/2511.20001",
        "hf_url": "https://huggingface.co/papers/2511.20001",
        "authors": json.dumps(["Mira Okafor", "Jonas Lindqvist", "Wei Zhang"]),
        "published": "2026-11-27T18:42:11.000Z",
        "upvotes": 48,
    }
    # Missing fields: a hidden author without a name, no upvotes, a versioned id,
    # a title only on the item, an abstract only on the paper.
    by_title = {r["title"]: r for r in rows}
    assert json.loads(
        by_title["Diffusion Policies Need Fewer Steps Than You Think"]["authors"]
    ) == ["Ana Sousa"]
    assert by_title["Retrieval Heads in Long-Context Language Models"]["upvotes"] is None
    contamination = by_title["Contamination-Resistant Evaluation of Code Agents"]
    assert (contamination["arxiv_id"], contamination["upvotes"]) == ("2511.20004", None)
    assert [d["dump_date"] for d in store.list_dumps(db)] == [DAY]
    assert store.list_dumps(db)[0]["source"] == "hf-daily"
    before = stored(db)

    second = run(data_dir, "fetch", "hf-daily", "--date", DAY)
    assert second.exit_code == 0, second.output
    assert "already fetched" in second.output and "nothing new" in second.output
    assert stored(db) == before
    assert store.get_fetch(db, "hf-daily", DAY)["state"] == "done"


def test_a_day_fetched_again_refreshes_upvotes_and_adds_only_newcomers(server, db):
    cfg = sources.load_source_settings()
    day = json.loads(fixture("hf_daily_2026-11-30.json"))
    server.script(HF_PATH, [Reply(body=json.dumps(day[:3]).encode())])
    assert sources.fetch_source_day(db, "hf-daily", DAY, cfg).new_papers == 3
    day[0]["paper"]["upvotes"] = 90
    server.script(HF_PATH, [Reply(body=json.dumps(day).encode())])
    again = sources.fetch_source_day(db, "hf-daily", DAY, cfg)
    assert (again.papers, again.new_papers, again.already_fetched) == (5, 2, False)
    assert store.list_days(db) == [{"day": DAY, "dumps": 2, "new_papers": 5}]
    assert db.execute("SELECT upvotes FROM papers WHERE arxiv_id = '2511.20001'").fetchone() == (
        90,
    )


def test_a_text_dump_paper_met_in_a_fetched_day_is_one_paper_with_its_metadata(server, db):
    store.record_dump(
        db,
        parse_dump_file(SAMPLE_DUMPS / "2026-11-16_000_7b2f11b90d39ad34.txt"),
        dump_date="2026-11-19",
    )
    count = store.count_papers(db)
    server.script(HF_PATH, [Reply(body=fixture("hf_daily_2026-11-30.json"))])
    result = sources.fetch_source_day(db, "hf-daily", DAY)
    assert (result.papers, result.new_papers) == (5, 4)
    assert store.count_papers(db) == count + 4
    row = db.execute(
        "SELECT id, arxiv_id, authors, url FROM papers"
        " WHERE title = 'Gradient Matching for Domain Generalization'"
    ).fetchall()
    assert len(row) == 1
    assert row[0][1:] == (
        "2511.20006",
        json.dumps(["Lea Brunner", "Tomás Ruiz"]),
        "https://arxiv.org/abs/2511.20006",
    )
    # Search finds it by an author's name now.
    assert [r["id"] for r in store.search_papers(db, "Brunner")] == [row[0][0]]


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limits_and_outages_are_waited_out_as_retry_after_says(server, db, status):
    server.script(
        HF_PATH,
        [
            Reply(status, b'{"error": "slow down"}', headers={"Retry-After": "0.2"}),
            Reply(body=fixture("hf_daily_2026-11-30.json")),
        ],
    )
    result = sources.fetch_source_day(db, "hf-daily", DAY)
    assert (result.papers, result.requests) == (5, 2)
    (_, first), (_, second) = server.requests
    assert second - first >= 0.0  # Retry-After "0.2" is not an integer: backoff applies
    server.requests.clear()
    server.script(
        HF_PATH,
        [Reply(status, b"{}", headers={"Retry-After": "1"}), Reply(body=b"[]")],
    )
    sources.fetch_source_day(db, "hf-daily", "2026-11-30")
    (_, first), (_, second) = server.requests
    assert second - first >= 0.29  # waited Retry-After, capped by PAPERFEED_FETCH_MAX_WAIT


def test_a_source_that_stays_down_stores_nothing_and_the_job_retries_the_day(server, data_dir):
    server.script("/api/daily_papers", [Reply(503, b"down", headers={"Retry-After": "0"})])
    run(data_dir, "migrate")
    db = store.connect(data_dir / "paperfeed.db")
    before = stored(db)
    failed = run(data_dir, "fetch", "hf-daily", "--date", DAY)
    assert failed.exit_code == 1
    assert "HTTP 503" in failed.output and "nothing was stored" in failed.output
    assert stored(db) == before
    ledger = store.get_fetch(db, "hf-daily", DAY)
    assert (ledger["state"], ledger["attempts"]) == ("failed", 1)
    assert len(server.requests) == 3  # one try and PAPERFEED_FETCH_RETRIES=2 retries

    # Failing again at 05:00 on Dec 1 counts a second attempt and backs off to 06:00.
    settings = load_settings(data_dir)
    cfg = sources.load_source_settings()
    early = datetime(2026, 12, 1, 5, tzinfo=UTC)
    with pytest.raises(sources.FetchError):
        sources.fetch_source_day(db, "hf-daily", DAY, cfg, now=early)
    ledger = store.get_fetch(db, "hf-daily", DAY)
    assert (ledger["attempts"], ledger["next_attempt_at"]) == (2, "2026-12-01T06:00:00+00:00")
    # The job: before PAPERFEED_FETCH_HOUR (6) nothing is due; at 06:10 the source is
    # back, and the three days before today are fetched, the failed one included.
    assert sources.due_days(db, "hf-daily", cfg, early) == []
    server.script("/api/daily_papers", [Reply(body=b"[]")])
    server.script(HF_PATH, [Reply(body=fixture("hf_daily_2026-11-30.json"))])
    later = datetime(2026, 12, 1, 6, 10, tzinfo=UTC)
    outcomes = jobs.fetch_sources(settings, now=later)
    assert [o.day for o in outcomes] == ["2026-11-28", "2026-11-29", DAY]
    assert [o.papers for o in outcomes] == [0, 0, 5]
    assert store.get_fetch(db, "hf-daily", DAY)["state"] == "done"
    # The refit ran: the new papers are in a published model.
    assert (data_dir / "models" / "CURRENT").exists()
    assert jobs.fetch_sources(settings, now=later) == []  # nothing due any more


def test_a_timeout_is_retried(server, db):
    server.script(
        HF_PATH, [Reply(delay=1.0, body=b"[]"), Reply(body=fixture("hf_daily_2026-11-30.json"))]
    )
    assert sources.fetch_source_day(db, "hf-daily", DAY).papers == 5


def test_truncated_json_is_retried_and_never_half_stored(server, db):
    body = fixture("hf_daily_2026-11-30.json")
    # A connection cut short (fewer bytes than Content-Length), then whole.
    server.script(HF_PATH, [Reply(body=body, truncate_to=700), Reply(body=body)])
    assert sources.fetch_source_day(db, "hf-daily", DAY).papers == 5
    # A body that is whole at the HTTP level but not JSON, every time: nothing stored.
    before = stored(db)
    server.script("/api/daily_papers?date=2026-11-29", [Reply(body=body[:900])])
    with pytest.raises(sources.FetchError, match="unreadable response"):
        sources.fetch_source_day(db, "hf-daily", "2026-11-29")
    assert stored(db) == before
    assert store.get_fetch(db, "hf-daily", "2026-11-29")["state"] == "failed"


def test_json_that_is_not_a_list_of_papers_fails_at_once(server, db):
    server.script(HF_PATH, [Reply(body=b'{"papers": []}')])
    with pytest.raises(sources.FetchError, match="expected a JSON list"):
        sources.fetch_source_day(db, "hf-daily", DAY)
    assert len(server.requests) == 1


def test_an_empty_day_stores_no_dump(server, data_dir):
    server.script(HF_PATH, [Reply(body=b"[]")])
    result = run(data_dir, "fetch", "hf-daily", "--date", DAY)
    assert result.exit_code == 0 and "no papers that day" in result.output
    db = store.connect(data_dir / "paperfeed.db")
    assert store.list_dumps(db) == []
    assert store.get_fetch(db, "hf-daily", DAY)["state"] == "done"


def test_arxiv_pages_through_a_day_one_request_every_delay(server, db):
    server.script(
        "/api/query?search_query=%28cat%3Acs.LG+OR+cat%3Acs.CL%29+AND+submittedDate"
        "%3A%5B202611300000+TO+202611302359%5D&start=0",
        [Reply(body=fixture("arxiv_2026-11-30_page1.xml"), content_type="application/atom+xml")],
    )
    server.script(
        "/api/query?search_query=%28cat%3Acs.LG+OR+cat%3Acs.CL%29+AND+submittedDate"
        "%3A%5B202611300000+TO+202611302359%5D&start=2",
        [
            Reply(503, b"busy", headers={"Retry-After": "0"}),
            Reply(body=fixture("arxiv_2026-11-30_page2.xml"), content_type="application/atom+xml"),
        ],
    )
    server.script(HF_PATH, [Reply(body=fixture("hf_daily_2026-11-30.json"))])
    sources.fetch_source_day(db, "hf-daily", DAY)
    server.requests.clear()
    result = sources.fetch_source_day(db, "arxiv", DAY)
    # Three papers; the third has the title of a Daily Papers paper: linked, not new.
    assert (result.papers, result.new_papers, result.requests) == (3, 2, 3)
    times = [t for _, t in server.requests]
    assert all(b - a >= 0.19 for a, b in zip(times, times[1:], strict=False))
    assert "max_results=2" in server.requests[0][0]
    row = db.execute(
        "SELECT authors, url, pdf_url FROM papers WHERE arxiv_id = '2511.30001'"
    ).fetchone()
    assert row == (
        json.dumps(["Priya Raman", "Oliver Grant"]),
        "http://arxiv.org/abs/2511.30001v1",
        "https://arxiv.org/pdf/2511.30001",
    )
    assert {d["source"]: d["dump_date"] for d in store.list_dumps(db)} == {
        "arxiv": DAY,
        "hf-daily": DAY,
    }
    assert store.list_days(db)[0]["day"] == DAY and len(store.list_days(db)) == 1


def test_an_empty_arxiv_day(server, db):
    server.script("/api/query", [Reply(body=fixture("arxiv_empty.xml"))])
    assert sources.fetch_source_day(db, "arxiv", DAY).papers == 0
    assert len(server.requests) == 1


def test_enrich_resolves_text_dump_titles_through_arxiv_once(server, data_dir):
    dump = data_dir / "dump.txt"
    shutil.copy(SAMPLE_DUMPS / "2026-11-16_000_7b2f11b90d39ad34.txt", dump)
    assert run(data_dir, "ingest", str(dump), "--date", "2026-11-19").exit_code == 0
    server.script("/api/query", [Reply(body=fixture("arxiv_titles.xml"))])
    first = run(data_dir, "enrich", "--limit", "45")
    assert first.exit_code == 0, first.output
    # Every paper of the dump is still counted: 180 not asked about yet, 44 not on arXiv.
    assert (
        "45 titles looked up, 1 found on arXiv, 1 paper updated; without an arXiv id:"
        " 180 not looked up yet, 44 not found by exact title"
    ) in first.output
    assert len(server.requests) == 3  # 20 titles a request
    assert "ti%3A%22gradient+matching+for+domain+generalization%22" in server.requests[0][0]
    db = store.connect(data_dir / "paperfeed.db")
    paper = db.execute(
        "SELECT arxiv_id, authors, url, pdf_url FROM papers"
        " WHERE title = 'Gradient Matching for Domain Generalization'"
    ).fetchone()
    assert paper == (
        "2104.09937",
        json.dumps(["Yuge Shi", "Jeffrey Seely", "Philip H. S. Torr"]),
        "https://arxiv.org/abs/2104.09937",
        "https://arxiv.org/pdf/2104.09937",
    )
    server.requests.clear()
    again = run(data_dir, "enrich", "--limit", "45")
    # The 45 titles are cached: the next run asks about the next ones.
    assert "45 titles looked up, 0 found" in again.output
    assert "135 not looked up yet, 89 not found by exact title" in again.output
    asked = " ".join(path for path, _ in server.requests)
    assert "gradient+matching" not in asked


def test_enrich_without_network_says_so_and_changes_nothing(server, data_dir):
    assert (
        run(data_dir, "ingest", str(SAMPLE_DUMPS / "2026-11-16_000_7b2f11b90d39ad34.txt")).exit_code
        == 0
    )
    server.close()  # nothing listens there any more
    db = store.connect(data_dir / "paperfeed.db")
    before = snapshot(db)
    result = run(data_dir, "enrich")
    assert result.exit_code == 1
    assert "arXiv could not be reached" in result.output and "cannot connect" in result.output
    assert snapshot(db) == before


def test_the_client_waits_between_requests():
    naps = []
    client = PoliteClient(min_interval=3.0, sleep=naps.append)
    client._last = time.monotonic()
    client._pace()
    assert naps and 0 < naps[0] <= 3.0


def test_a_date_in_a_dump_file_name_dates_the_dump(db, tmp_path):
    from recommender.ingest import ingest_paths

    named = tmp_path / "daily-papers-2026-11-25.txt"
    shutil.copy(SAMPLE_DUMPS / "2026-11-18_002_928061713d22a60e.txt", named)
    (result,) = ingest_paths(db, [named])
    assert result.record.dump_date == "2026-11-25"
    assert store.day_in_name("2026-13-45.txt") is None


def test_unknown_fetch_sources_are_refused(monkeypatch):
    from recommender.config import ConfigError

    monkeypatch.setenv("PAPERFEED_FETCH_SOURCES", "hf-daily,rss")
    with pytest.raises(ConfigError, match="unknown source 'rss'"):
        sources.load_source_settings()
