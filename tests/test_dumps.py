"""The dump parser on the real dumps and on the variations the issue lists."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.dumps import DumpError, normalise_title, parse_dump, parse_dump_file

from .conftest import SAMPLE_COUNTS, SAMPLE_DUMPS

ABSTRACT_A = (
    "We study gradient descent on wide networks. Our analysis shows that the kernel "
    "stays close to its initial value, and we confirm this with experiments."
)
ABSTRACT_B = "Transformers are slow on long inputs. We propose a linear-time attention variant."


def text_dump(*lines: str, sep: str = "\n") -> bytes:
    return sep.join(lines).encode("utf-8")


@pytest.mark.parametrize("name", sorted(SAMPLE_COUNTS))
def test_real_dump_has_the_counted_papers(name):
    dump = parse_dump_file(SAMPLE_DUMPS / name)
    assert len(dump.papers) == SAMPLE_COUNTS[name]
    assert dump.duplicates_in_dump == (1 if name.startswith("2026-11-18") else 0)  # TRP


@pytest.mark.parametrize("name", sorted(SAMPLE_COUNTS))
def test_real_dump_titles_are_the_lines_after_the_page_header(name):
    lines = (SAMPLE_DUMPS / name).read_text(encoding="utf-8").splitlines()
    expected_titles = [lines[2].removeprefix("Subscribe")] + lines[4::2]
    pairs = [
        (t.strip(), a.strip())
        for t, a in zip(expected_titles, lines[3::2], strict=True)
        if not t.startswith("TRP: ")  # a near-duplicate of an earlier title
    ]
    dump = parse_dump_file(SAMPLE_DUMPS / name)
    assert [(p.title, p.abstract) for p in dump.papers] == pairs
    assert dump.skipped_lines == (
        "Get trending papers in your email inbox once a day!",
        "Get trending papers in your email inbox!",
    )


def test_subscribe_glued_to_the_first_title_is_removed():
    dump = parse_dump(text_dump("Subscribe", "SubscribeDeep Kernels", ABSTRACT_A), fmt="text")
    assert [p.title for p in dump.papers] == ["Deep Kernels"]


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda b: b.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda b: b"\xef\xbb\xbf" + b, id="bom"),
        pytest.param(lambda b: b.replace(b"\n", b"\n\n"), id="blank-lines"),
        pytest.param(lambda b: b.replace(b"\n", b"  \n"), id="trailing-spaces"),
        pytest.param(
            lambda b: b"Daily Papers\nby AK and the research community\nnew\n" + b,
            id="more-boilerplate",
        ),
        pytest.param(lambda b: b"Trending this week\nSign in\n" + b, id="unknown-boilerplate"),
        pytest.param(lambda b: b.replace(b"\n", b"\r"), id="old-mac-cr"),
    ],
)
def test_variations_parse_to_the_same_papers(variant):
    base = text_dump(
        "Get trending papers in your email inbox!",
        "SubscribeNeural Tangent Kernels Revisited",
        ABSTRACT_A,
        "Linear Attention",
        ABSTRACT_B,
    )
    dump = parse_dump(variant(base), fmt="text")
    assert [(p.title, p.abstract) for p in dump.papers] == [
        ("Neural Tangent Kernels Revisited", ABSTRACT_A),
        ("Linear Attention", ABSTRACT_B),
    ]


def test_long_title_and_short_abstract_are_kept():
    long_title = "A " + "very " * 50 + "long title about kernels"
    dump = parse_dump(
        text_dump("Subscribe", "Short Paper", ABSTRACT_A, long_title, "Brief.", "Last", ABSTRACT_B),
        fmt="text",
    )
    assert [p.title for p in dump.papers] == ["Short Paper", long_title, "Last"]
    assert dump.papers[1].abstract == "Brief."


def test_same_title_twice_in_one_dump_is_one_paper():
    dump = parse_dump(text_dump("Linear Attention", ABSTRACT_B, "Linear attention!", ABSTRACT_B))
    assert len(dump.papers) == 1
    assert dump.duplicates_in_dump == 1


def test_normalised_title_ignores_case_spacing_and_punctuation():
    assert normalise_title("Attention Is  All You Need!") == normalise_title(
        "attention is all you need"
    )
    assert normalise_title("Top-nσ: Not All Logits") == "top nσ not all logits"


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"", None, "empty"),
        (b"   \n\n  ", None, "empty"),
        (b"Title\x00\x01\x02\x03binary", 1, "binary"),
        (b"A Title\n" + "caf\u00e9".encode("latin-1") + b" is here.", 2, "UTF-8"),
        (text_dump("Subscribe", "One Paper", ABSTRACT_A, "A Dangling Title"), 4, "no abstract"),
        (text_dump(ABSTRACT_A, ABSTRACT_B), 1, "abstract"),
        (b"Get trending papers in your email inbox!\nSubscribe\n", None, "no papers"),
    ],
)
def test_malformed_text_dumps_name_the_problem_and_the_line(data, line, words):
    with pytest.raises(DumpError) as info:
        parse_dump(data, source="bad.txt", fmt="text")
    assert info.value.line == line
    assert words.lower() in str(info.value).lower()
    assert str(info.value).startswith("bad.txt")


def test_jsonl_dump_with_optional_fields():
    lines = [
        {
            "title": "Linear Attention",
            "abstract": ABSTRACT_B,
            "id": "2401.00001",
            "url": "https://arxiv.org/abs/2401.00001",
            "authors": ["A. Author", "B. Author"],
            "published": "2024-01-01",
        },
        {"title": "Kernels", "abstract": ABSTRACT_A},
    ]
    data = "\n".join(json.dumps(x) for x in lines).encode()
    dump = parse_dump(data, source="x.jsonl")
    assert dump.format == "jsonl"
    first, second = dump.papers
    assert (first.external_id, first.authors, first.published) == (
        "2401.00001",
        ("A. Author", "B. Author"),
        "2024-01-01",
    )
    assert second.external_id is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"title": "x", "abstract": "y"}\n{oops', "invalid JSON"),
        ('{"title": "x", "abstract": "y"}\n{"abstract": "no title"}', '"title"'),
        ('{"title": "x", "abstract": "y"}\n["a", "list"]', "JSON object"),
        ('{"title": "x", "abstract": "y"}\n{"title": "t", "abstract": 3}', '"abstract"'),
    ],
)
def test_malformed_jsonl_names_line_two(line, message):
    with pytest.raises(DumpError) as info:
        parse_dump(line.encode(), source="x.jsonl", fmt="jsonl")
    assert info.value.line == 2
    assert message in str(info.value)


ATOM = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>ArXiv Query</title>
  <entry>
    <id>http://arxiv.org/abs/2401.00001v2</id>
    <published>2024-01-01T00:00:00Z</published>
    <title>Linear
      Attention</title>
    <summary>  Transformers are slow on long inputs. We propose a linear-time variant.
    </summary>
    <author><name>A. Author</name></author>
    <author><name>B. Author</name></author>
    <link href="http://arxiv.org/abs/2401.00001v2" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/2401.00001v2" rel="related"/>
  </entry>
</feed>"""


def test_arxiv_atom_entry():
    (paper,) = parse_dump(ATOM, source="q.xml").papers
    assert paper.title == "Linear Attention"
    assert paper.external_id == "arxiv:2401.00001"
    assert paper.authors == ("A. Author", "B. Author")
    assert paper.url == "http://arxiv.org/abs/2401.00001v2"
    assert paper.abstract.startswith("Transformers are slow")


def test_atom_entity_expansion_is_refused():
    bomb = b"""<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa">
    <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
    <feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&b;</title></entry></feed>"""
    with pytest.raises(DumpError, match="unsafe XML"):
        parse_dump(bomb, source="bomb.xml", fmt="atom")


def test_atom_that_is_not_a_feed():
    with pytest.raises(DumpError, match="Atom <feed>"):
        parse_dump(b"<html><body>hi</body></html>", source="page.xml", fmt="atom")


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), fmt=st.sampled_from(["text", "jsonl", "atom", None]))
def test_arbitrary_bytes_parse_or_raise_dump_error(data, fmt):
    try:
        dump = parse_dump(data, source="fuzz", fmt=fmt)
    except DumpError:
        return
    assert dump.papers and all(p.title for p in dump.papers)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.text(st.characters(blacklist_categories=["Cs"]), max_size=300), max_size=12),
    sep=st.sampled_from(["\n", "\r\n", "\n\n"]),
)
def test_arbitrary_text_lines_parse_or_raise_dump_error(lines, sep):
    try:
        dump = parse_dump(sep.join(lines).encode("utf-8"), source="fuzz", fmt="text")
    except DumpError:
        return
    assert dump.papers and all(p.title and len(p.title) <= 600 for p in dump.papers)


TRP = "TRP: Trained Rank Pruning for Efficient Deep Neural Networks"
TRAINED = "Trained Rank Pruning for Efficient Deep Neural Networks"


def test_the_real_trp_pair_in_a_sample_dump_is_one_paper():
    titles = [
        p.title
        for p in parse_dump_file(SAMPLE_DUMPS / "2026-11-18_002_928061713d22a60e.txt").papers
    ]
    assert TRAINED in titles and TRP not in titles  # the first in page order stays


@pytest.mark.parametrize(
    ("first", "second", "ids", "merged"),
    [
        (TRAINED, TRP, (None, None), True),
        (TRP, TRAINED, (None, None), True),
        (TRP, TRAINED, (None, "arxiv:1812.02402"), True),
        (TRP, TRAINED, ("arxiv:1812.02402", "arxiv:1910.04576"), False),
        # 95 % alike: a plural, an article; the same id or none
        (
            "Denoising Diffusion Probabilistic Models for Image Synthesis",
            "Denoising Diffusion Probabilistic Model for Image Synthesis",
            (None, None),
            True,
        ),
        (
            "A Survey of Large Language Models for Code Generation",
            "Survey of Large Language Models for Code Generation",
            ("arxiv:2401.00001", "arxiv:2401.00001v2"),
            True,
        ),
        (
            "A Survey of Large Language Models for Code Generation",
            "Survey of Large Language Models for Code Generation",
            ("arxiv:2401.00001", "arxiv:2401.00002"),
            False,
        ),
        # numbers, two named methods, short generic rests: different papers
        (
            "The Llama 3 Herd of Models and Their Training",
            "The Llama 4 Herd of Models and Their Training",
            (None, None),
            False,
        ),
        (
            "FooNet: Efficient and Scalable Deep Learning on Large Graphs with Millions of Nodes",
            "BarNet: Efficient and Scalable Deep Learning on Large Graphs with Millions of Nodes",
            (None, None),
            False,
        ),
        ("BERT: A Survey", "A Survey", (None, None), False),
        ("Graph Kernels", "Graph Kernel", (None, None), False),  # short: 92 % alike
    ],
)
def test_near_duplicate_titles_are_one_paper_across_dumps(db, first, second, ids, merged):
    from recommender import store

    for day, (title, ident) in enumerate(zip((first, second), ids, strict=True), start=19):
        row = {"title": title, "abstract": f"About {title}.", "authors": ["Ada Lovelace"]}
        row |= {"id": ident} if ident else {}
        store.record_dump(
            db, parse_dump(json.dumps(row).encode(), fmt="jsonl"), dump_date=f"2026-11-{day}"
        )
    papers = db.execute("SELECT title, arxiv_id FROM papers ORDER BY id").fetchall()
    assert len(papers) == (1 if merged else 2)
    if merged:
        # The stored paper keeps its title and gains the arXiv id the other one brought.
        assert papers[0][0] == first
        assert papers[0][1] == store.arxiv_id_of(ids[0] or ids[1])
        assert len(store.list_days(db)) == 2
