"""Models on disk: complete bundles, one writer across processes, no pickles."""

import copy
import dataclasses
import json
import mmap
import subprocess
import sys
import time

import numpy as np
import pytest

from recommender import bundles, store
from recommender.artifacts import load_recommender, save_recommender
from recommender.bundles import WriterBusy, model_writer
from recommender.config import load_settings
from recommender.content import ContentModel
from recommender.model import fit_recommender
from recommender.quantized import Int8Rows
from recommender.ranking import Profile, rank_for_user, rank_users
from tests._corpus import corpus, topical_likes
from tests._reference import assert_same_neighbourhoods


@pytest.fixture(scope="module")
def rec():
    texts, topics = corpus()
    return fit_recommender(texts, topical_likes(topics, new={5, 11, 17}))


def publish(models_dir, rec):
    with model_writer(models_dir) as writer:
        ids = np.arange(rec.n_items, dtype=np.int64) + 1
        return writer.publish(rec, ids, served=np.arange(5), info={"papers": rec.n_items})[0]


def test_saved_then_loaded_model_ranks_identically(rec, tmp_path):
    save_recommender(rec, tmp_path / "m")
    again = load_recommender(tmp_path / "m")
    profile = Profile(liked=[0, 7], disliked=[13], query="galaxy")
    assert rank_for_user(again, profile, n=10) == rank_for_user(rec, profile, n=10)


def test_arrays_load_without_pickle(rec, tmp_path):
    save_recommender(rec, tmp_path)
    codes = np.load(tmp_path / "arrays.collab.item_factors.npy", allow_pickle=False)
    scales = np.load(tmp_path / "arrays.collab.item_scales.npy", allow_pickle=False)
    assert codes.dtype == np.int8 and scales.dtype == np.float32
    assert np.array_equal(codes, rec.collab.item_factors_.codes)
    assert np.array_equal(scales, rec.collab.item_factors_.scales)


def _mapped(array: np.ndarray) -> bool:
    """Whether ``array``'s memory is a file mapping (not a private copy); int8 rows: both
    their codes and their scales."""
    if isinstance(array, Int8Rows):
        return _mapped(array.codes) and _mapped(array.scales)
    while array is not None and not isinstance(array, mmap.mmap):
        array = getattr(array, "base", None) if isinstance(array, np.ndarray) else array._mmap
    return array is not None


def test_a_loaded_bundle_maps_its_arrays_read_only_instead_of_copying_them(rec, tmp_path):
    publish(tmp_path, rec)
    loaded = bundles.load_current(tmp_path)
    collab = loaded.rec.collab
    factors = collab.item_factors_
    mapped = [factors.codes, factors.scales, collab.bridge_coef_, collab.user_factors_]
    mapped += [loaded.paper_ids, loaded.index.neighbours_t.data, loaded.rec.item_vectors.data]
    assert all(_mapped(a) and not a.flags.writeable for a in mapped)
    assert np.array_equal(np.asarray(factors), np.asarray(rec.collab.item_factors_))


def test_a_bundle_of_format_3_one_npz_read_into_memory_still_loads(rec, tmp_path):
    publish(tmp_path, rec)
    folder = tmp_path / "bundles" / "b0001"
    for prefix in ("arrays", "serving"):
        files = sorted(folder.glob(f"{prefix}.*.npy"))
        keys = [f.name[len(prefix) + 1 : -4].replace(".", "/") for f in files]
        np.savez(
            folder / f"{prefix}.npz", **{k: np.load(f) for k, f in zip(keys, files, strict=True)}
        )
        for f in files:
            f.unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format": 3}))
    bundles.write_checksums(folder)
    bundle, problem = bundles.load_servable(tmp_path)
    assert bundle.name == "b0001" and problem is None
    assert not _mapped(bundle.rec.collab.item_factors_)
    profile = Profile(liked=[0, 7], disliked=[13], query="galaxy")
    assert rank_for_user(bundle.rec, profile, n=10) == rank_for_user(rec, profile, n=10)


def test_loading_from_an_empty_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="refit"):
        load_recommender(tmp_path)


def test_each_publish_is_a_new_bundle_and_old_ones_are_pruned(rec, tmp_path):
    names = [publish(tmp_path, rec) for _ in range(bundles.KEEP_BUNDLES + 1)]
    assert names == ["b0001", "b0002", "b0003", "b0004"]
    assert bundles.current_name(tmp_path) == "b0004"
    assert bundles.bundle_names(tmp_path) == names[-bundles.KEEP_BUNDLES :]
    assert not [p for p in (tmp_path / "bundles").iterdir() if p.name.startswith(".")]
    loaded = bundles.load_current(tmp_path)
    assert loaded.name == "b0004" and list(loaded.index.candidates) == [0, 1, 2, 3, 4]
    assert loaded.info["papers"] == rec.n_items and set(loaded.info["parts"]) >= {"neighbours"}
    sample = list(loaded.onboarding)  # paper ids (pidx + 1 here), one per non-empty cluster
    assert 0 < len(sample) <= bundles.ONBOARDING_SAMPLE and len(set(sample)) == len(sample)


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(rec, tmp_path):
    with model_writer(tmp_path):
        busy = pytest.raises(WriterBusy, match="another refit is running")
        with busy, model_writer(tmp_path):
            pass
    with model_writer(tmp_path):  # released: the next one gets it
        pass


def test_staging_folders_of_a_writer_that_died_are_removed_by_the_next(rec, tmp_path):
    stale = tmp_path / "bundles" / ".staging-12345-abc"
    stale.mkdir(parents=True)
    (stale / "arrays.npz").write_bytes(b"half a model")
    publish(tmp_path, rec)
    assert not stale.exists()
    assert bundles.bundle_names(tmp_path) == ["b0001"]


def test_a_failed_publish_leaves_nothing_behind(rec, tmp_path, monkeypatch):
    publish(tmp_path, rec)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bundles, "save_recommender", broken)
    with pytest.raises(OSError, match="disk full"):
        publish(tmp_path, rec)
    assert bundles.current_name(tmp_path) == "b0001"
    assert [p.name for p in (tmp_path / "bundles").iterdir()] == ["b0001"]


@pytest.mark.slow
def test_two_refits_at_once_end_cleanly_with_one_new_bundle(tmp_path):
    """Real processes: `paperfeed refit` twice at once. One fits and publishes, the other
    says another is running and exits 0; no staging folder is left."""
    from tests._web import copy_corpus

    data = copy_corpus(tmp_path / "data")
    settings = load_settings(data)
    before = bundles.bundle_names(settings.models_dir)
    go = tmp_path / "go"
    # Each process imports everything first, then waits for the same signal, so the two
    # refits start within milliseconds of each other (a fit takes about a second).
    launcher = (
        "import pathlib, sys, time\n"
        "from recommender.cli import main\n"
        "import recommender.pipeline, recommender.model\n"
        "go = pathlib.Path(sys.argv[1])\n"
        "while not go.exists(): time.sleep(0.002)\n"
        "main(sys.argv[2:])\n"
    )
    args = ["--data-dir", str(data), "refit", "--json"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", launcher, str(go), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(3)  # both have imported (a slow machine only makes them start later)
    go.touch()
    results = [(p.communicate(timeout=180), p.returncode) for p in procs]
    for (_, err), code in results:
        assert code == 0, err
    reports = [json.loads(out) for (out, _), _ in results]
    skipped = [r for r in reports if r.get("skipped")]
    assert len(skipped) == 1 and skipped[0]["skipped"].startswith("another refit is running")
    out = next(json.dumps(r) for r in reports if not r.get("skipped"))
    published = json.loads(out)["version"]
    after = bundles.bundle_names(settings.models_dir)
    assert after == before + [published]
    assert not [p for p in (settings.models_dir / "bundles").iterdir() if p.name[0] == "."]
    assert bundles.current_name(settings.models_dir) == published
    db = store.open_db(settings.db_path)
    assert bundles.load_current(settings.models_dir).max_paper_id == store.max_paper_id(db)
    db.close()


def _columns(index) -> list[dict[int, float]]:
    M = index.neighbours_t.tocsc()
    return [
        {int(j): round(float(v), 5) for j, v in zip(*_col(M, c), strict=True)}
        for c in range(M.shape[1])
    ]


def _col(M, c):
    lo, hi = M.indptr[c], M.indptr[c + 1]
    return M.indices[lo:hi], M.data[lo:hi]


def test_a_publish_extends_the_previous_neighbourhoods_when_old_papers_kept_their_vectors(
    rec, tmp_path
):
    """Papers appended, old vectors unchanged: the served papers of the last publish only meet
    the new papers; a newly served paper is searched in full; the result is a full search's."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rec.n_items, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    n_old = rec.n_items - 6
    ids = np.arange(rec.n_items, dtype=np.int64) + 1
    k = 5

    def dense(n):
        return dataclasses.replace(
            rec, item_vectors=X[:n], content=ContentModel(k=k).fit(X[:n]), text_kind="embeddings"
        )

    old, new = dense(n_old), dense(rec.n_items)
    with model_writer(tmp_path) as writer:
        writer.publish(old, ids[:n_old], served=np.arange(10), info={})
        name, _ = writer.publish(new, ids, served=np.arange(3, 16), info={})
    loaded = bundles.load_bundle(tmp_path, name)
    assert loaded.info["neighbourhoods"] == {"kept": 7, "searched": 6}
    full = bundles.CandidateIndex.build(new, np.arange(3, 16))
    assert_same_neighbourhoods(_columns(loaded.index), _columns(full))
    stored = loaded.index.neighbours_t.tocsr().tocoo()
    assert any(j >= n_old for j in stored.row)
    # A list no new paper entered keeps its published floor (the search's float32 k-th
    # similarity), not the least of its float16 values.
    untouched = np.ones(stored.shape[1], bool)
    untouched[stored.col[stored.row >= n_old]] = False
    assert untouched.any()
    np.testing.assert_allclose(loaded.index.floor[untouched], full.floor[untouched], rtol=1e-6)


def test_a_publish_searches_again_when_the_old_papers_vectors_changed(rec, tmp_path):
    publish(tmp_path, rec)
    moved = dataclasses.replace(rec, item_vectors=rec.item_vectors * np.float32(0.5))
    moved.content = ContentModel(k=rec.content.k).fit(moved.item_vectors)
    with model_writer(tmp_path) as writer:
        name, _ = writer.publish(moved, np.arange(rec.n_items) + 1, served=np.arange(5), info={})
    assert bundles.load_bundle(tmp_path, name).info["neighbourhoods"] == {
        "kept": 0,
        "searched": 5,
    }
    again = publish(tmp_path, moved)  # the same vectors as the bundle before: all kept
    assert bundles.load_bundle(tmp_path, again).info["neighbourhoods"]["kept"] == 5


def test_the_served_papers_dense_vectors_are_a_view_of_the_mapped_file(rec, tmp_path):
    """The served papers are the newest rows: workers share their vectors, not copy them."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((rec.n_items, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    dense = dataclasses.replace(
        rec, item_vectors=X, content=ContentModel(k=5).fit(X), text_kind="embeddings"
    )
    ids = np.arange(rec.n_items, dtype=np.int64) + 1
    with model_writer(tmp_path) as writer:
        writer.publish(dense, ids, served=np.arange(10, rec.n_items), info={})
    loaded = bundles.load_current(tmp_path)
    assert _mapped(loaded.index.vectors) and _mapped(loaded.index.factors)
    assert np.array_equal(loaded.index.vectors, X[10:])
    profile = Profile(liked=[0, 7], disliked=[13])
    cand = np.arange(10, rec.n_items)
    served = rank_users(loaded.rec, [profile], candidates=cand, index=loaded.index)
    assert served == rank_users(dense, [profile], candidates=cand)


def test_onboarding_sample_of_a_large_corpus_fits_on_a_sample_and_covers_every_topic(
    monkeypatch,
):
    """Past ``ONBOARDING_FIT_ROWS`` papers the k-means is fitted on a random sample (its cost
    stops growing with the corpus); every topic still gets its representative, and the
    representative is a real paper of that topic."""
    from types import SimpleNamespace

    rng = np.random.default_rng(1)
    centres = np.eye(4, 16, dtype=np.float32) * 10
    topic = np.repeat(np.arange(4), [400, 300, 200, 100])
    X = centres[topic] + rng.standard_normal((1000, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    monkeypatch.setattr(bundles, "ONBOARDING_FIT_ROWS", 120)
    chosen = bundles.onboarding_sample(SimpleNamespace(item_vectors=X), k=4)
    assert [int(topic[i]) for i in chosen] == [0, 1, 2, 3]  # largest topic first


def test_the_onboarding_clusters_are_fitted_on_one_openmp_thread(monkeypatch):
    """scikit-learn's k-means threads wait for each other at every step: on a machine whose
    cores are busy two took 3 s where one took 0.4 s at 50,728 papers, for the same sample.
    The clusters are fitted on one thread whatever the process allows."""
    from types import SimpleNamespace

    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_info, threadpool_limits

    seen = []
    real_fit = MiniBatchKMeans.fit

    def fit(self, *args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(MiniBatchKMeans, "fit", fit)
    X = np.random.default_rng(2).standard_normal((300, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    with threadpool_limits(limits=2, user_api="openmp"):
        two = bundles.onboarding_sample(SimpleNamespace(item_vectors=X), k=5)
    assert seen and set(seen) == {1}
    one = bundles.onboarding_sample(SimpleNamespace(item_vectors=X), k=5)
    assert np.array_equal(one, two) and len(one) == 5


def test_a_loaded_bundle_builds_nothing_per_paper_or_per_term(rec, tmp_path):
    """What a worker holds of its own is per-person sized: the candidates' factors and the
    neighbour floors are the mapped files, the collaborative solve it shares is factors x
    factors, and the TF-IDF vocabulary stays the stored array until text is transformed."""
    publish(tmp_path, rec)
    loaded = bundles.load_current(tmp_path)
    f = loaded.rec.collab.factors
    assert _mapped(loaded.index.factors) and _mapped(loaded.index.floor)
    assert _mapped(loaded.index.vectors.data) and _mapped(loaded.index.vectors.indices)
    assert abs(loaded.index.vectors - rec.item_vectors[:5]).max() == 0
    assert loaded.rec.collab._shared_solve().shape == (f, f)
    text = loaded.rec.text
    assert "_vectorizer" not in text.__dict__ and _mapped(text.terms_.utf8)
    assert list(text.terms_) == list(rec.text.terms_) and text.terms_[-1] == rec.text.terms_[-1]
    profile = Profile(liked=[0, 7], disliked=[13])
    assert rank_for_user(loaded.rec, profile, n=10) == rank_for_user(rec, profile, n=10)
    assert "_vectorizer" not in text.__dict__  # ranking likes names terms from the array
    keywords = Profile(liked=[0], query="galaxy")
    assert rank_for_user(loaded.rec, keywords, n=10) == rank_for_user(rec, keywords, n=10)
    assert "_vectorizer" in text.__dict__  # a keyword query needs the vocabulary: built once


def test_a_bundle_published_with_bridged_factors_and_without_floors_still_loads(rec, tmp_path):
    """Bundles published before the floors were stored, while the bridged factors were
    written and the vocabulary was a fixed-width array load and rank as the new layout
    does (reasons name the same terms)."""
    publish(tmp_path, rec)
    folder = tmp_path / "bundles" / "b0001"
    assert not (folder / "arrays.collab.bridged_factors.npy").exists()
    np.save(folder / "arrays.collab.bridged_factors.npy", rec.collab.bridged_factors_)
    (folder / "serving.floor.npy").unlink()
    for name in ("terms_utf8", "term_ends"):  # the vocabulary as a fixed-width array
        (folder / f"arrays.text.{name}.npy").unlink()
    np.save(folder / "arrays.text.terms.npy", np.asarray(rec.text.terms_).astype(str))
    bundles.write_checksums(folder)
    bundle, problem = bundles.load_servable(tmp_path)
    assert bundle.name == "b0001" and problem is None
    assert bundle.index.stored_floor is None
    fresh = bundles.CandidateIndex.build(rec, np.arange(5))
    assert np.array_equal(bundle.index.floor, fresh.floor)
    profile = Profile(liked=[0, 7], disliked=[13], query="galaxy")
    assert rank_for_user(bundle.rec, profile, n=10) == rank_for_user(rec, profile, n=10)


def test_neighbour_indices_are_stored_as_narrow_as_the_served_papers_allow(rec, tmp_path):
    """A bundle's neighbour indices are candidate positions: stored in the narrowest unsigned
    type that holds them (uint16 below 65,536 served papers), mapped as stored, and a
    request widens only the rows it reads (never the whole array: a private copy per
    worker), ranking as the model in memory does."""
    from recommender.neighbourhoods import index_dtype

    assert [index_dtype(n) for n in (5, 256, 257, 65_536, 65_537)] == [
        np.uint8,
        np.uint8,
        np.uint16,
        np.uint16,
        np.uint32,
    ]
    served = np.arange(12)  # of the 18 sample papers: uint8 holds the positions
    with model_writer(tmp_path) as writer:
        ids = np.arange(rec.n_items, dtype=np.int64) + 1
        writer.publish(rec, ids, served=served, info={})
    folder = tmp_path / "bundles" / "b0001"
    stored_type = np.load(folder / "serving.nbr_indices.npy", mmap_mode="r").dtype
    assert stored_type == index_dtype(len(served)) == np.uint8
    loaded = bundles.load_current(tmp_path)
    stored = loaded.index.neighbours_t
    profiles = [Profile(liked=[0, 7, 16], disliked=[13]), Profile(liked=[5])]
    got = rank_users(loaded.rec, profiles, candidates=served, n=10, index=loaded.index)
    assert got == rank_users(rec, profiles, candidates=served, n=10)
    assert stored is loaded.index.neighbours_t
    assert stored.indices.dtype == np.uint8 and _mapped(stored.indices)
    assert _mapped(stored.data) and not stored.indices.flags.writeable


def test_neighbour_rows_give_scipys_products_to_the_bit():
    """The kNN sums from the rows a request widens equal scipy's product over the whole
    matrix exactly (the same products added in the same order), and rows come back as
    stored, in the order asked, repeats included (similarities that float16 holds)."""
    import scipy.sparse as sp

    from recommender.neighbourhoods import NeighbourRows

    rng = np.random.default_rng(5)
    M = sp.random(400, 300, density=0.05, random_state=6, format="csr", dtype=np.float32)
    M.data = rng.standard_normal(M.nnz).astype(np.float16).astype(np.float32)
    narrow = NeighbourRows.of(M)
    assert narrow.indices.dtype == np.uint16 and narrow.nnz == M.nnz
    rows = np.array([7, 3, 3, 399, 0])
    assert (narrow.rows(rows) != M[rows]).nnz == 0 and narrow.rows(rows).indices.dtype == np.int32
    L = sp.random(6, 400, density=0.08, random_state=7, format="csr", dtype=np.float32)
    assert np.array_equal(narrow.left_product(L).toarray(), (L @ M).toarray())
    assert (narrow.tocsr() != M).nnz == 0 and narrow.rows([]).shape == (0, 300)


def test_a_bundle_of_the_earlier_layout_int32_neighbours_every_ridge_row_still_loads(rec, tmp_path):
    """Format 4 as written before: int32 neighbour indices, float32 similarities, float32
    factors and every row of the ridge's coefficients (float32, zero rows included). It
    loads, ranks and bridges new papers as format 6 does, and a publish extends its
    neighbourhoods."""
    publish(tmp_path, rec)
    folder = tmp_path / "bundles" / "b0001"
    nbr = np.load(folder / "serving.nbr_indices.npy")
    assert nbr.dtype == np.uint8 and (folder / "arrays.collab.bridge_rows.npy").exists()
    np.save(folder / "serving.nbr_indices.npy", nbr.astype(np.int32))
    sims = np.load(folder / "serving.nbr_data.npy")
    np.save(folder / "serving.nbr_data.npy", sims.astype(np.float32))
    (folder / "arrays.collab.bridge_rows.npy").unlink()
    np.save(folder / "arrays.collab.bridge_coef.npy", rec.collab.bridge_coef_)
    np.save(folder / "arrays.collab.item_factors.npy", np.asarray(rec.collab.item_factors_))
    (folder / "arrays.collab.item_scales.npy").unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == 6
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format": 4}))
    bundles.write_checksums(folder)
    bundle, problem = bundles.load_servable(tmp_path)
    assert problem is None and bundle.rec.collab.bridge_rows_ is None
    assert bundle.index.neighbours_t.indices.dtype == np.int32
    assert bundle.rec.collab.bridge_coef_.dtype == np.float32
    assert not isinstance(bundle.rec.collab.item_factors_, Int8Rows)
    profiles = [Profile(liked=[0, 7], disliked=[13], query="galaxy")]
    served = np.arange(5)
    got = rank_users(bundle.rec, profiles, candidates=served, n=10, index=bundle.index)
    # float32 factors of the same values: products summed in float32 like format 6's int8
    # ones up to rounding, which these few near-equal collaborative scores would magnify
    as_float32 = copy.copy(rec.collab)
    as_float32.item_factors_ = np.asarray(rec.collab.item_factors_)
    expected = dataclasses.replace(rec, collab=as_float32)
    assert got == rank_users(expected, profiles, candidates=served, n=10)
    new = rec.item_vectors[-4:]
    assert np.array_equal(bundle.rec.collab.bridge(new), rec.collab.bridge(new))
    again = publish(tmp_path, rec)
    assert bundles.load_bundle(tmp_path, again).info["neighbourhoods"]["kept"] == 5


def test_similarities_are_stored_as_float16_and_the_floors_from_the_search(rec, tmp_path):
    """A published neighbourhood's similarities are float16 (half of float32's bytes; the
    ranking measured within 0.005, docs/benchmarks.md), read back as float32; each
    candidate's floor (the reasons' threshold) is the search's full-precision k-th
    similarity."""
    publish(tmp_path, rec)
    folder = tmp_path / "bundles" / "b0001"
    assert np.load(folder / "serving.nbr_data.npy", mmap_mode="r").dtype == np.float16
    loaded = bundles.load_current(tmp_path).index
    index, sims = rec.content.neighbours(np.arange(5))
    want = np.zeros((rec.n_items, 5), np.float32)
    want[index.T, np.arange(5)[None, :]] = sims.T.astype(np.float16)
    assert np.array_equal(loaded.neighbours_t.tocsr().toarray(), want)
    assert np.array_equal(loaded.floor, sims.min(axis=1))
    assert loaded.neighbours_t.rows([0, 3]).dtype == np.float32
