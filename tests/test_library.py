"""A person's library as their profile: reading reference files, matching, library papers."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender import library, pipeline, store
from recommender.dumps import parse_dump
from recommender.ratings_io import RatingsFormatError

from ._sources import FixtureServer, Reply, fixture
from .test_pipeline import dump_bytes, titles, world  # noqa: F401  (the world fixture)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "library"


def read(name: str) -> list[library.LibraryEntry]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return library.read_library(text, library.guess_library_format(name, text), source=name)


def day_feed(feeds, db, uid, dump, **options):
    """The person's feed of one dump's day (``?window=YYYY-MM-DD``)."""
    query = pipeline.FeedQuery(uid, window="day", day=dump.dump_date, **options)
    return list(feeds.feed(db, query).items)


def test_zotero_bibtex_keeps_accents_ids_and_abstracts():
    entries = read("zotero.bib")
    assert [(e.line, e.arxiv_id, e.doi, e.year) for e in entries] == [
        (2, "2206.12543", None, "2022"),
        (10, None, "10.1234/jmr.2021.77", "2021"),
        (20, None, None, "2025"),
    ]
    assert entries[0].title == (
        "A Fast, Well-Founded Approximation to the Empirical Neural Tangent Kernel"
    )
    assert entries[0].abstract == ""  # Zotero left it out: no abstract, still an entry
    assert entries[1].title == "Spectral Bias of Gaussian Process Kernels in München Weather Data"
    assert entries[1].authors == ("Jörg Müller", "José García", "Søren Østergaard")


def test_mendeley_bibtex_with_its_preamble_and_double_braces():
    entries = read("mendeley.bib")
    assert [(e.title, e.arxiv_id) for e in entries] == [
        ("Gradient Matching for Domain Generalization", "2104.09937"),
        ("Wind-Driven Curricula for Reinforcement Learning on the Moors", None),
    ]
    assert entries[1].authors == ("Emily Brontë", "Jonas Lindqvist")


def test_ris_records_with_wrapped_abstracts():
    entries = read("zotero.ris")
    assert [(e.line, e.year, e.doi) for e in entries] == [
        (1, "2023", None),
        (8, "2024", "10.5555/bees.2024.1"),
    ]
    assert entries[1].authors == ("Ana Sousa", "Zoé Émile")
    assert entries[1].abstract.endswith("detect swarming a day earlier than thresholds do.")


def test_id_lists_read_arxiv_ids_urls_and_dois():
    assert [(e.line, e.arxiv_id, e.doi) for e in read("ids.txt")] == [
        (2, "2104.09937", None),
        (3, "2511.30001", None),
        (4, "2511.30002", None),
        (5, None, "10.1234/jmr.2021.77"),
        (6, None, "10.9999/nowhere.1"),
    ]


@pytest.mark.parametrize(
    ("text", "fmt", "line", "why"),
    [
        ("@article{a,\n title = {Open\n", "bibtex", 2, "never closed"),
        ("TY  - JOUR\nTI  - A title\n", "ris", 1, "no ER line"),
        ("TI  - A title\nER  - \n", "ris", 1, "outside a record"),
        ("2104.09937\nnot an id at all\n", "ids", 2, "neither an arXiv id nor a DOI"),
        ("name,year\nx,2020\n", "csv", 1, "no title, doi or arxiv_id column"),
    ],
)
def test_a_malformed_file_names_its_line(text, fmt, line, why):
    with pytest.raises(RatingsFormatError) as err:
        library.read_library(text, fmt, source="lib")
    assert err.value.line == line
    assert why in str(err.value)


@pytest.fixture
def arxiv_server(monkeypatch):
    srv = FixtureServer()
    monkeypatch.setenv("PAPERFEED_ARXIV_API_URL", srv.url)
    monkeypatch.setenv("PAPERFEED_ARXIV_DELAY", "0.05")
    monkeypatch.setenv("PAPERFEED_FETCH_BACKOFF", "0.01")
    monkeypatch.setenv("PAPERFEED_FETCH_RETRIES", "1")
    yield srv
    srv.close()


def test_an_import_matches_stored_papers_adds_the_rest_and_says_so(world, db):  # noqa: F811
    entries = read("zotero.bib") + read("library.csv")
    # one title paperfeed has, from the world's dumps, in the CSV
    entries[3] = library.LibraryEntry(line=2, title="Video Diffusion Models")
    done = library.import_library(db, 1, entries)
    assert done.message() == "5 entries: 1 matched, 4 added to your profile, 0 unreadable."
    added = {p["title"] for p in store.library_papers(db, 1)}
    assert "Spectral Bias of Gaussian Process Kernels in München Weather Data" in added
    row = db.execute(
        "SELECT authors, abstract, published, first_dump_id, url FROM papers WHERE title LIKE ?",
        ["Spectral Bias%"],
    ).fetchone()
    assert row == (
        '["Jörg Müller", "José García", "Søren Østergaard"]',
        "We study spectral bias of Gaussian process kernels fitted to weather stations around"
        " Munich, and find that periodic kernels dominate in winter.",
        "2021",
        None,
        "https://doi.org/10.1234/jmr.2021.77",
    )
    assert len(store.rating_values(db, 1)) == 5
    # importing again changes nothing, and says so
    again = library.import_library(db, 1, entries)
    assert (again.matched, again.added, again.already) == (0, 0, 5)
    # another person's import of the same file gets rows of their own
    other = library.import_library(db, 2, entries)
    assert (other.matched, other.added) == (1, 4)
    assert len(store.library_papers(db, 2)) == 4


def test_an_import_keeps_a_dislike_and_says_so(world, db):  # noqa: F811
    """Found by a user trial: a library listing a paper the person had disliked in the feed
    turned the dislike into a like, silently. The dislike is kept and the message says so."""
    paper_id = db.execute(
        "SELECT id FROM papers WHERE title = ?", ["Video Diffusion Models"]
    ).fetchone()[0]
    store.set_rating(db, 1, paper_id, -1)
    entries = [library.LibraryEntry(line=2, title="Video Diffusion Models")]
    done = library.import_library(db, 1, entries)
    assert (done.matched, done.added, done.disliked) == (0, 0, 1)
    assert "1 kept as disliked" in done.message()
    assert store.rating_values(db, 1)[paper_id] == -1


def test_arxiv_ids_are_resolved_through_the_api_in_one_request(world, db, arxiv_server):  # noqa: F811
    arxiv_server.script(
        "/api/query", [Reply(200, fixture("arxiv_ids.xml"), content_type="text/xml")]
    )
    done = library.import_library(db, 1, read("ids.txt"))
    assert done.message() == (
        "5 entries: 0 matched, 2 added to your profile, 3 unreadable"
        " (line 4: arXiv has no paper 2511.30002;"
        " line 5: DOI 10.1234/jmr.2021.77 has no title and is not in paperfeed;"
        " line 6: DOI 10.9999/nowhere.1 has no title and is not in paperfeed)."
    )
    # 2104.09937 and 2511.30001..2 are asked together, once
    assert len(arxiv_server.requests) == 1
    assert "id_list=2104.09937%2C2511.30001%2C2511.30002" in arxiv_server.requests[0][0]
    row = db.execute(
        "SELECT title, authors, library_of FROM papers WHERE url LIKE '%2511.30001'"
    ).fetchone()
    assert row == (
        "Honeybee Waggle Dance Decoding with Event Cameras",
        '["Zoé Émile", "Ana Sousa"]',
        1,
    )


def test_when_arxiv_cannot_be_reached_the_rest_is_imported(world, db, arxiv_server):  # noqa: F811
    arxiv_server.script("/api/query", [Reply(503, b"down")])
    entries = read("ids.txt") + read("mendeley.bib")
    done = library.import_library(db, 1, entries)
    assert done.added == 2 and len(done.unreadable) == 5
    assert "could not be looked up: arXiv did not answer" in done.message()


def test_library_papers_change_the_ranking_but_are_never_candidates(world, db):  # noqa: F811
    settings, d1, d2, ids = world
    # Everything paperfeed has, on every day, for a person with no likes: page order.
    diffusion_library = [
        library.LibraryEntry(
            line=1,
            title="Denoising Diffusion Samplers for Latent Audio",
            abstract="Diffusion models synthesise audio by denoising latents; diffusion sampling"
            " of speech audio with a latent denoiser.",
        )
    ]
    pipeline.refit(db, settings)
    before = titles(day_feed(pipeline.FeedService(settings), db, 1, d2))
    assert before == ["Latent Diffusion for Audio", "Expressive Power of Graph Networks"]
    # The same for a graph library: the day's graph paper now comes first.
    graph_library = [
        library.LibraryEntry(
            line=1,
            title="Message Passing Networks on Protein Graphs",
            abstract="Graph neural networks with message passing on graphs; expressive graph"
            " networks and the Weisfeiler Lehman test.",
        )
    ]
    library.import_library(db, 1, graph_library)
    library.import_library(db, 2, diffusion_library)
    pipeline.refit(db, settings)
    feeds = pipeline.FeedService(settings)
    ranked = day_feed(feeds, db, 1, d2)
    assert titles(ranked) == ["Expressive Power of Graph Networks", "Latent Diffusion for Audio"]
    assert ranked[0].reason == "because you liked “Message Passing Networks on Protein Graphs”"
    assert titles(day_feed(feeds, db, 2, d2))[0] == "Latent Diffusion for Audio"
    library_ids = {p["id"] for p in store.library_papers(db, 1) + store.library_papers(db, 2)}
    # never a candidate: not on any day, in any window, in search, trending or similar
    for person in (1, 2):
        for dump in (d1, d2):
            shown = day_feed(feeds, db, person, dump, include_seen=True)
            assert not library_ids & {i.paper_id for i in shown}
    found = store.search_papers(db, "Message Passing Networks on Protein Graphs")
    assert found and not library_ids & {p["id"] for p in found}
    assert not library_ids & set(store.recent_paper_ids(db, 10_000))
    for paper_id in ids.values():
        assert not library_ids & {p["id"] for p in feeds.similar_papers(db, paper_id)}
    assert not library_ids & {p["id"] for p in feeds.onboarding_sample(db)}
    # and a later dump with the same title stores its own, public row
    store.record_dump(
        db,
        parse_dump(dump_bytes([(graph_library[0].title, "graphs")]), fmt="jsonl", source="d3"),
        dump_date="2026-11-03",
    )
    public = db.execute(
        "SELECT count(*) FROM papers WHERE title = ? AND library_of IS NULL",
        [graph_library[0].title],
    ).fetchone()[0]
    assert public == 1


def test_deleting_a_person_deletes_their_library_papers(world, db):  # noqa: F811
    library.import_library(db, 1, read("mendeley.bib"))
    assert len(store.library_papers(db, 1)) == 2
    store.delete_user(db, 1)
    assert db.execute("SELECT count(*) FROM papers WHERE library_of IS NOT NULL").fetchone() == (0,)


def test_the_web_import_says_what_it_did_and_a_bad_file_imports_nothing(app, client, db):
    import io

    from ._web import post, sign_up, user_id

    sign_up(client)
    person = user_id(db, "ada@example.org")
    bad = {"file": (io.BytesIO(b"TY  - JOUR\nTI  - Open record\n"), "mine.ris")}
    response = post(
        client, "/settings/library", bad, content_type="multipart/form-data", follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "Nothing was imported. mine.ris:1: this record never ends (no ER line)" in page
    assert store.library_papers(db, person) == []
    good = {"file": ((FIXTURES / "zotero.ris").open("rb"), "zotero.ris"), "back": "welcome"}
    response = post(client, "/settings/library", good, content_type="multipart/form-data")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/welcome#library")
    page = client.get("/welcome").get_data(as_text=True)
    assert "2 entries: 0 matched, 2 added to your profile, 0 unreadable." in page
    assert "Start from my library" in page
    assert len(store.library_papers(db, person)) == 2
    # a state change needs the form's token
    assert client.post("/settings/library", data={"ids": "2104.09937"}).status_code == 400


def test_the_cli_imports_a_library_and_refuses_a_malformed_one(data_dir, db):
    from click.testing import CliRunner

    from recommender.cli import cli

    db["users"].insert({"email": "ada@example.org", "created_at": "2026-11-01T00:00:00"})
    run = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(data_dir),
            "ratings",
            "library",
            "ada@example.org",
            str(FIXTURES / "mendeley.bib"),
        ],
    )
    assert run.exit_code == 0, run.output
    assert run.output == "2 entries: 0 matched, 2 added to your profile, 0 unreadable.\n"
    bad = data_dir / "bad.bib"
    bad.write_text("@article{x,\n  title = {Open\n")
    run = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "ratings", "library", "ada@example.org", str(bad)]
    )
    assert run.exit_code == 1 and "never closed" in run.output
    assert len(store.library_papers(db, 1)) == 2


def test_a_library_paper_is_never_merged_as_a_near_duplicate(world, db):  # noqa: F811
    entry = library.LibraryEntry(line=1, title="Video Difusion Models", abstract="private copy")
    library.import_library(db, 1, [entry])
    (own,) = [p["id"] for p in store.library_papers(db, 1)]
    assert not [pair for pair in store.find_near_duplicates(db) if own in pair]
