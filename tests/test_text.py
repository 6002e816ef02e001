"""Text representations: unit-length rows, persistence, and the real embedding model."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.text import EmbeddingText, TfidfText, make_text_model, paper_text
from tests._corpus import corpus

from .conftest import REPO


def test_paper_text_joins_title_and_abstract_only_when_there_is_one():
    assert paper_text("A title", "") == "A title"
    assert paper_text(" A title ", "An abstract.") == "A title. An abstract."


def test_tfidf_rows_have_unit_length_and_survive_a_round_trip():
    texts, _ = corpus()
    model = TfidfText().fit(texts)
    X = model.transform(texts)
    assert sp.issparse(X)
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    again = TfidfText.from_state(*model.state())
    np.testing.assert_allclose(again.transform(texts).toarray(), X.toarray(), rtol=1e-6)


@pytest.mark.parametrize("n", [8, 200])  # below and above the tiny-corpus vectorizer's 20
def test_tfidf_fit_transform_is_fit_then_transform(n):
    texts = [t for t, _ in zip(*corpus(), strict=True)] * (n // len(corpus()[0]) + 1)
    texts = [f"{t} variant{i % 7}" for i, t in enumerate(texts[:n])]
    once = TfidfText()
    X = once.fit_transform(texts)
    twice = TfidfText().fit(texts)
    assert list(once.terms_) == list(twice.terms_)
    assert X.dtype == np.float32 and sp.isspmatrix_csr(X)
    np.testing.assert_array_equal(X.toarray(), twice.transform(texts).toarray())


def test_unknown_representation_is_refused():
    with pytest.raises(ValueError, match="tfidf"):
        make_text_model("word2vec")


def test_a_model_that_is_neither_bundled_nor_a_folder_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="never downloaded"):
        EmbeddingText(model="someone/unknown-model").fit()


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    cache = tmp_path_factory.mktemp("emb-cache")
    return EmbeddingText(cache_dir=cache, progress=False).fit()


def test_real_embeddings_put_same_topic_papers_closest(embedder):
    texts, topics = corpus()
    X = embedder.transform(texts)
    assert X.shape == (len(texts), embedder.dim_)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    sims = X @ X.T
    np.fill_diagonal(sims, -1)
    nearest = sims.argmax(axis=1)
    agree = np.mean([topics[i] == topics[j] for i, j in enumerate(nearest)])
    assert agree >= 0.8


def test_embeddings_are_cached_by_text_hash(embedder, monkeypatch):
    texts = ["dark matter in dwarf galaxies", "enzyme kinetics"]
    first = embedder.transform(texts)
    assert embedder._cache_file().exists()

    def refuse(*args, **kwargs):
        raise AssertionError("cached texts must not be encoded again")

    monkeypatch.setattr(embedder.encoder_, "encode", refuse)
    np.testing.assert_allclose(embedder.transform(texts[::-1]), first[::-1])
    # A model loaded from a bundle (a publish) whose texts are all cached never loads the
    # encoder (torch and the model: ~20 s of a day's publish under load).
    loaded = EmbeddingText.from_state(*embedder.state())
    loaded.cache_dir = embedder.cache_dir
    np.testing.assert_allclose(loaded.transform(texts), first)
    assert not hasattr(loaded, "encoder_")
    # Nor does a refit's freshly fitted model (fit_recommender fits, then transforms).
    fitted = EmbeddingText(cache_dir=embedder.cache_dir, progress=False).fit(texts)
    np.testing.assert_allclose(fitted.transform(texts), first)
    assert not hasattr(fitted, "encoder_")


def test_embeddings_are_the_default_text_model_unless_opted_out(caplog):
    from recommender.text import default_text_kind, embeddings_available

    assert embeddings_available()  # the test venv installs the extra, as `make run` does
    assert default_text_kind({}) == "embeddings"
    assert default_text_kind({"PAPERFEED_TEXT_MODEL": "tfidf"}) == "tfidf"
    assert default_text_kind({"PAPERFEED_TEXT_MODEL": "embeddings:/m"}) == "embeddings:/m"


def test_without_the_extra_the_default_falls_back_to_tfidf_with_a_warning(monkeypatch, caplog):
    import importlib.util

    from recommender import text

    real = importlib.util.find_spec
    monkeypatch.setattr(
        text.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sentence_transformers" else real(name, *a),
    )
    with caplog.at_level("WARNING", logger="recommender.text"):
        assert text.default_text_kind({}) == "tfidf"
    assert "embeddings extra is not installed" in caplog.text


def test_a_vocabulary_stored_as_utf8_reads_back_every_term():
    from recommender.text import Terms

    for words in (["galaxy", "dark matter", "z"], ["α decay", "naïve", "x", ""]):
        terms = Terms.encode(words)
        assert list(terms) == words and len(terms) == len(words)
        assert [terms[i] for i in range(len(words))] == words and terms[-1] == words[-1]
    assert list(Terms.encode([])) == []


@pytest.mark.parametrize(
    "params",
    [{}, {"ngram_range": (1, 3), "min_df": 3, "max_df": 0.3}, {"ngram_range": (2, 2)}],
)
@pytest.mark.parametrize("n", [8, 200])
@pytest.mark.filterwarnings("error::UserWarning")
def test_tfidf_fit_transform_counts_terms_as_scikit_learn_does(params, n):
    """The fit counts terms itself (faster than CountVectorizer's loop per term): the same
    vocabulary, idf and matrix as scikit-learn's TfidfVectorizer with the same settings
    (accents, stop words, repeats, pruning), entry for entry once scikit-learn's rows are in
    term order as the fit's are (the values within an ulp or two: a row's norm sums its
    squares in that order)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, _ = corpus()
    extra = ["Café naïve résumé: the the THE café", "über Straße über 5㎒", "a an the of", "x y z"]
    texts = [f"{t} {extra[i % 4]} r{i % 5} r{i % 5}" for i, t in enumerate((texts * 12)[:n])]
    model = TfidfText(**params)
    got = model.fit_transform(texts)
    if n < 20:  # the tiny-corpus vectorizer: no pruning
        want = TfidfVectorizer(
            ngram_range=model.ngram_range,
            sublinear_tf=True,
            stop_words="english",
            strip_accents="unicode",
            dtype=np.float32,
        )
    else:
        want = model._make_vectorizer()
    expected = want.fit_transform(texts).tocsr()
    assert list(model.terms_) == list(want.get_feature_names_out())
    np.testing.assert_array_equal(model.vectorizer_.idf_, want.idf_)
    assert got.dtype == expected.dtype == np.float32
    assert got.has_sorted_indices
    expected.sort_indices()
    for part in ("indptr", "indices"):
        np.testing.assert_array_equal(getattr(got, part), getattr(expected, part))
    np.testing.assert_array_max_ulp(got.data, expected.data, maxulp=2)
    np.testing.assert_array_max_ulp(model.transform(texts).toarray(), expected.toarray(), 2)


def test_a_corpus_of_stop_words_is_refused_as_scikit_learn_refuses_it():
    with pytest.raises(ValueError, match="empty vocabulary"):
        TfidfText().fit_transform(["the and of", "a an the"] * 15)


_WORDY = st.text(
    alphabet=st.one_of(
        st.characters(),  # any code point (word characters of every script, marks, digits)
        st.sampled_from(list(" _-.,'’\u00a0\u200b\u0301\u0308éßİı½²٣ǅ_ａ１")),
    ),
    max_size=60,
)


@given(_WORDY)
@settings(max_examples=3000, deadline=None)
def test_the_fast_tokenizer_finds_scikit_learns_tokens_in_any_text(text):
    """``\\w\\w+`` stands for scikit-learn's ``(?u)\\b\\w\\w+\\b`` (faster): the same tokens,
    in the same order, in any Unicode text, before and after scikit-learn's preprocessing."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from recommender.text import SKLEARN_TOKEN_PATTERN, TfidfText, _tokenizer

    assert TfidfVectorizer().token_pattern == SKLEARN_TOKEN_PATTERN  # still scikit-learn's
    vectorizer = TfidfText()._make_vectorizer()
    fast, theirs = _tokenizer(vectorizer), vectorizer.build_tokenizer()
    assert fast is not theirs
    assert fast(text) == theirs(text)
    preprocessed = vectorizer.build_preprocessor()(text)
    assert fast(preprocessed) == theirs(preprocessed)


def test_the_fast_tokenizer_finds_scikit_learns_tokens_in_the_sample_papers():
    from recommender.text import TfidfText, _tokenizer

    vectorizer = TfidfText()._make_vectorizer()
    fast, theirs = _tokenizer(vectorizer), vectorizer.build_tokenizer()
    pre = vectorizer.build_preprocessor()
    texts, _ = corpus()
    samples = sorted((REPO / "samples" / "dumps").iterdir())
    texts += [line for path in samples for line in path.read_text("utf-8").splitlines()]
    assert len(texts) > 500
    for text in texts:
        assert fast(text) == theirs(text) and fast(pre(text)) == theirs(pre(text))


def test_a_custom_token_pattern_keeps_its_own_tokenizer():
    from recommender.text import TfidfText, _tokenizer

    vectorizer = TfidfText()._make_vectorizer(token_pattern=r"(?u)\b\w+\b")
    assert _tokenizer(vectorizer)("a bc d") == ["a", "bc", "d"]
