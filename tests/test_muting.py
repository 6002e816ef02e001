"""Muted keywords: a muted word hides its longer forms, not unrelated words that share letters."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender.muting import is_muted, muted_filter, muted_pattern, stem


def hides(words: list[str], text: str) -> bool:
    return is_muted(muted_pattern(words), text, "")


@pytest.mark.parametrize(
    ("muted", "text"),
    [
        ("LLM", "Scaling LLMs to long contexts"),
        ("LLM", "An LLM-based agent"),
        ("llm", "What LLMs know"),
        ("benchmark", "Benchmarking code models"),
        ("benchmarks", "A new benchmark for retrieval"),
        ("survey", "Surveys of graph learning"),
        ("diffusion", "Diffusion-based audio"),
        ("normalizing", "Layer normalization revisited"),
        ("GAN", "GANs for tabular data"),
        ("large language model", "Large  language-models as judges"),
        ("C++", "Compiling C++ faster"),
        ("Über", "über alles"),
    ],
)
def test_a_muted_word_hides_its_longer_forms(muted, text):
    assert hides([muted], text)


@pytest.mark.parametrize(
    ("muted", "text"),
    [
        ("LLM", "Multimodal MLLMs"),  # a match starts at a word start
        ("art", "An article on artificial intelligence"),  # short words are whole words
        ("GAN", "Organic gains"),
        ("large language model", "large models of language"),
        ("graph", "Paragraphs and photographs"),
    ],
)
def test_a_muted_word_does_not_hide_other_words(muted, text):
    assert not hides([muted], text)


def test_stems_keep_at_least_three_letters():
    assert [stem(w) for w in ("benchmarks", "LLMs", "studies", "gas", "uses", "tuning")] == [
        "benchmark",
        "LLM",
        "stud",
        "gas",
        "use",
        "tun",
    ]


def test_the_abstract_counts_as_much_as_the_title():
    pattern = muted_pattern(["survey"])
    assert is_muted(pattern, "A title", "We survey methods.")
    assert not is_muted(pattern, "A title", "We study methods.")


def test_blank_or_unreadable_muted_lists_mute_nothing():
    assert muted_pattern(["", "  "]) is None
    assert not is_muted(None, "anything", "at all")
    for stored in (None, "", "[]", '["  "]', "not json", '{"a": 1}', "3"):
        assert muted_filter(stored) is None


def test_the_stored_json_list_becomes_a_paper_test():
    test = muted_filter(json.dumps(["LLM", "benchmark"]))
    assert test({"title": "LLMs at scale", "abstract": ""})
    assert test({"title": "Robots", "abstract": "We benchmarked them."})
    assert not test({"title": "Robots", "abstract": "We built them."})


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1)


@given(
    word=words,
    before=st.sampled_from(["", "A ", "(", "x-"]),
    after=st.sampled_from(["", " b", ".", "s"]),
)
def test_a_muted_word_always_hides_a_text_where_it_stands_alone(word, before, after):
    assert hides([word], f"{before}{word}{after}")


@given(word=words, text=st.text())
def test_regex_characters_in_muted_words_never_raise(word, text):
    hides([word + "(*[", "a+b?"], text)
