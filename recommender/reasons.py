"""Why a paper is shown: the liked paper it is closest to, or the key terms it shares.

:func:`explain` turns each person's chosen candidate positions into :class:`Ranked` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: What a reason can be. A reason is data (its kind, the paper, the terms or topic) until
#: :func:`describe` turns it into words at the edge; nothing downstream parses the words.
LIKED = "liked"  # close to one of the person's liked papers (``because_pidx``)
TERMS = "terms"  # shares key terms with the person's likes (``terms``, TF-IDF)
TOPIC = "topic"  # matches one of the person's keyword topics (``topic``)
COLLEAGUES = "colleagues"  # people whose likes overlap this person's liked it
POPULAR = "popular"  # liked by more than one reader here
DISLIKED = "disliked"  # closer to a disliked paper than to any liked one
COLLEAGUES_DESPITE_DISLIKE = "colleagues-despite-dislike"
RANKED = "ranked"  # ranked, nothing stands out
FOLLOWED = "followed"  # by an author the person follows (``author``): always on top of its day
#: Kinds the feed gives papers the ranker did not rank: their score means nothing.
NEW_SINCE_MODEL = "new-since-model"
NEW_IN_DUMP = "new-in-dump"
RATED = "rated"
UNRANKED = frozenset({NEW_SINCE_MODEL, NEW_IN_DUMP, RATED})
#: Kinds whose strongest evidence is a dislike: never in a digest, never "because you liked".
AGAINST_DISLIKE = frozenset({DISLIKED, COLLEAGUES_DESPITE_DISLIKE})


@dataclass(frozen=True)
class Ranked:
    """One ranked paper: its row, blended score and why it is shown.

    ``kind`` is one of the reason kinds above; ``because_pidx`` the liked paper it is closest
    to (``LIKED``); ``terms`` key terms it shares with the person's likes (``TERMS``, TF-IDF);
    ``topic`` the keyword topic it matches best (``TOPIC``). ``match`` is where the paper
    falls among the person's own history: the share of their past likes that their taste
    model scores at most as high as this paper (1: above every like; ``None``: fewer than
    two likes, nothing to compare with).
    """

    pidx: int
    score: float
    kind: str
    because_pidx: int | None = None
    terms: tuple[str, ...] = ()
    topic: str | None = None
    match: float | None = None


def describe(
    kind: str, *, because_title: str | None = None, terms=(), topic=None, author=None
) -> str:
    """The words for a reason: the one place a reason becomes text (feeds, email, Atom)."""
    if kind == FOLLOWED and author:
        return f"by {author}, whom you follow"
    if kind == LIKED and because_title:
        short = because_title if len(because_title) <= 80 else because_title[:77].rstrip() + "…"
        return f"because you liked “{short}”"
    if kind == TERMS and terms:
        return "matches: " + ", ".join(terms)
    if kind == TOPIC and topic:
        return f"matches ‘{topic}’"
    return _WORDS.get(kind, _WORDS[RANKED])


_WORDS = {
    LIKED: "close to papers you liked",
    TERMS: "close to papers you liked",
    TOPIC: "matches your topics",
    COLLEAGUES: "liked by colleagues whose likes overlap yours",
    POPULAR: "liked by several readers here",
    DISLIKED: "similar to a paper you disliked",
    COLLEAGUES_DESPITE_DISLIKE: "liked by colleagues, though similar to a paper you disliked",
    RANKED: "recommended",
    FOLLOWED: "by an author you follow",
    NEW_SINCE_MODEL: "new since the model was fitted",
    NEW_IN_DUMP: "new in this dump",
    RATED: "you rated this",
}


#: A liked paper is named as the reason only if the candidate's similarity to it stands out
#: among the candidates: at least this many standard deviations above their mean.
REASON_MIN_Z = 1.0
#: ...and (TF-IDF) it shares at least two terms with it, none carrying more than this share
#: of the similarity: one shared common word ("flows") is not a reason.
REASON_MAX_TERM_SHARE = 0.67


def explain(
    rec, profiles, ctx, feats, weights, scores, tops, reasons, terms_list
) -> list[list[Ranked]]:
    """Turn each person's top positions into :class:`Ranked` rows with their reasons.

    A reason names what moved the score: each signal's contribution is its blend weight
    times its z-score (``weights``: people x ``FEATURES``). The content signals (``knn``,
    ``centroid``) leading: the liked paper closest to the candidate, if that similarity stands
    out (:data:`REASON_MIN_Z`, the candidate's neighbour floor, and for TF-IDF more than one
    shared term), else the shared terms; the candidate closer to a disliked paper than to any
    liked one: "similar to a paper you disliked"; ``collab`` leading: "liked by people with
    similar taste"; ``popularity``: "popular with readers here".
    """
    from recommender.weights import FEATURES

    out = []
    if not reasons:  # benchmarks and evaluation: the order alone
        for i, top in enumerate(tops):
            pidxs, row_scores = ctx.candidates[top].tolist(), scores[i, top].tolist()
            out.append([Ranked(p, s, RANKED) for p, s in zip(pidxs, row_scores, strict=True)])
        return out
    matches = _match_shares(rec, profiles, ctx, tops)
    because_of, because_sim = _block_closest(rec, profiles, ctx, tops, "liked")
    disliked_of, disliked_sim = _block_closest(rec, profiles, ctx, tops, "disliked")
    terms_of = (
        _block_terms(rec, profiles, ctx, tops, terms_list) if terms_list is not None else None
    )
    col = {f: j for j, f in enumerate(FEATURES)}
    codes, terms_rows = [], []
    pairs: list[tuple[int, np.ndarray]] = []  # (person, positions in top) to check by terms
    for i, top in enumerate(tops):
        w = weights[i]
        content = w[col["knn"]] * feats["knn"][i, top]
        content = content + w[col["centroid"]] * feats["centroid"][i, top]
        collab = w[col["collab"]] * feats["collab"][i, top]
        popular = w[col["popularity"]] * feats["popularity"][i, top]
        other = np.maximum(collab, popular)
        # content "moved the score" when it is positive and at least half the largest other
        # contribution: then the liked paper (or shared terms) is a true reason
        by_content = (content > 0) & (content >= 0.5 * other)
        row_terms = list(terms_of[i]) if terms_of is not None else [()] * len(top)
        code = np.where(by_content, CODE_TERMS, np.where(other <= 0, CODE_NONE, CODE_COLLAB))
        code[~by_content & (other > 0) & (popular > collab)] = CODE_POPULAR
        if because_of[i] is not None:
            b = np.asarray(because_of[i], dtype=np.int64)
            named = np.flatnonzero(by_content & (because_sim[i] >= ctx.floor[top]))
            if len(named):
                row_set, inverse = np.unique(b[named], return_inverse=True)
                mean, std = _spread(rec, ctx, row_set)
                z = (because_sim[i][named] - mean[inverse]) / std[inverse]
                named = named[z >= REASON_MIN_Z]
                code[named] = CODE_LIKED
                if len(named) and sp.issparse(rec.item_vectors):
                    pairs.append((i, named))
        if disliked_of[i] is not None:
            best_like = because_sim[i] if because_of[i] is not None else -np.inf
            near = disliked_sim[i] > best_like
            code[near] = np.where(code[near] == CODE_COLLAB, CODE_DISLIKED_COLLAB, CODE_DISLIKED)
        codes.append(code)
        terms_rows.append(row_terms)
    if pairs:  # TF-IDF: one shared word is not a reason to name a liked paper
        cands = np.concatenate([ctx.candidates[tops[i][at]] for i, at in pairs])
        liked = np.concatenate([np.asarray(because_of[i], np.int64)[at] for i, at in pairs])
        ok = _several_terms(rec.item_vectors, cands, liked)
        start = 0
        for i, at in pairs:
            fail = at[~ok[start : start + len(at)]]
            codes[i][fail[codes[i][fail] == CODE_LIKED]] = CODE_TERMS
            start += len(at)
    topic_of = _block_topics(rec, profiles, ctx, tops)
    likes = rec.collab.likes_ if rec.collab is not None else None
    for i, top in enumerate(tops):
        pidxs, row_scores = ctx.candidates[top].tolist(), scores[i, top].tolist()
        row_terms = terms_rows[i]
        because: list[int | None] = [None] * len(top)
        topics: list[str | None] = [None] * len(top)
        kinds = []
        for j, c in enumerate(codes[i].tolist()):
            kind = _KIND[c]
            if c == CODE_LIKED:
                because[j] = because_of[i][j]
            elif c == CODE_TERMS and topic_of[i] is not None and not len(profiles[i].liked):
                kind, topics[j] = TOPIC, topic_of[i][j]
            elif c == CODE_TERMS and len(row_terms[j]) > 1:
                pass
            elif c == CODE_COLLAB and likes is not None and likes[pidxs[j]] < 1:
                # nobody here liked it: its colleagues' signal is bridged from its text
                kind = RANKED
            elif c == CODE_DISLIKED_COLLAB and likes is not None and likes[pidxs[j]] < 1:
                kind = DISLIKED
            elif c == CODE_POPULAR and likes is not None and likes[pidxs[j]] < 2:
                kind = RANKED  # one reader's like is a hint, not popularity
            elif c == CODE_TERMS:
                kind = RANKED
            if kind not in (TERMS, TOPIC):
                row_terms[j] = ()
            kinds.append(kind)
        out.append(
            [
                Ranked(p, s, k, b, t, tp, m)
                for p, s, k, b, t, tp, m in zip(
                    pidxs, row_scores, kinds, because, row_terms, topics, matches[i], strict=True
                )
            ]
        )
    return out


CODE_LIKED, CODE_TERMS, CODE_COLLAB, CODE_POPULAR, CODE_NONE = 0, 1, 2, 3, 4
CODE_DISLIKED, CODE_DISLIKED_COLLAB = 5, 6
_KIND = {
    CODE_LIKED: LIKED,
    CODE_TERMS: TERMS,
    CODE_COLLAB: COLLEAGUES,
    CODE_POPULAR: POPULAR,
    CODE_NONE: RANKED,
    CODE_DISLIKED: DISLIKED,
    CODE_DISLIKED_COLLAB: COLLEAGUES_DESPITE_DISLIKE,
}


def _block_topics(rec, profiles, ctx, tops) -> list[list[str] | None]:
    """For people ranked on keyword topics alone: the topic each shown paper matches best."""
    from recommender.model import split_topics

    out: list[list[str] | None] = [None] * len(profiles)
    for i, p in enumerate(profiles):
        if p.query and not len(p.liked) and len(tops[i]):
            topics = split_topics(p.query) or [p.query]
            sims = rec.topic_similarity(rec.topic_vectors(p.query), ctx.candidates[tops[i]])
            out[i] = [topics[j] for j in sims.argmax(axis=1).tolist()]
    return out


def _match_shares(rec, profiles, ctx, tops) -> list[list[float | None]]:
    """For each shown paper, the share of the person's likes it scores at least as high as.

    The person's own taste model (:mod:`recommender.taste`; the centroid of their likes
    with TF-IDF) scores each liked paper by the model of the *other* likes (leave one out,
    so a like is not compared with itself), and the shown paper the same way: without the
    one like that supports it most. Otherwise a paper next to a single like would beat
    every like and "strong" would be on every card. With fewer than two likes there is
    nothing to compare with: ``None``.
    """
    out: list[list[float | None]] = []
    X = rec.item_vectors
    taste = rec.taste if rec.taste is not None and rec.taste.available else None
    if taste is not None:
        # every shown paper of the block whitened once (people of a digest share papers)
        shown_all = np.unique(
            np.concatenate([np.zeros(0, np.int64), *(ctx.candidates[t] for t in tops)])
        )
        whitened = np.asarray(X[shown_all], dtype=np.float32) @ taste.precision_
    for i, p in enumerate(profiles):
        liked = np.asarray(p.liked, dtype=np.int64).ravel()
        shown = ctx.candidates[tops[i]]
        if len(liked) < 2 or not len(shown):
            out.append([None] * len(shown))
            continue
        if taste is not None:
            XL = np.asarray(X[liked], dtype=np.float32)
            background = taste.mean_
            disliked = np.asarray(p.disliked, dtype=np.int64).ravel()
            if len(disliked):
                a = np.float32(taste.dislike_share)
                background = (1 - a) * background + a * np.asarray(X[disliked]).mean(axis=0)
            w_liked = taste.precision_ @ XL.mean(axis=0)
            w_background = taste.precision_ @ np.asarray(background, np.float32)
            own = taste.own_scores(XL, taste.quad_[liked], (w_liked, w_background))
            XS = np.asarray(X[shown], dtype=np.float32)
            support = whitened[np.searchsorted(shown_all, shown)] @ XL.T  # (shown, likes)
            n = len(liked)
            new = (n * (XS @ w_liked) - support.max(axis=1)) / (n - 1) - XS @ w_background
        else:  # centroid similarity, leave one out (rows are unit length)
            total = np.asarray(X[liked].sum(axis=0)).ravel()
            own = (np.asarray(X[liked] @ total).ravel() - 1.0) / (len(liked) - 1)
            support = X[shown] @ X[liked].T
            support = support.toarray() if sp.issparse(support) else np.asarray(support)
            new = (np.asarray(X[shown] @ total).ravel() - support.max(axis=1)) / (len(liked) - 1)
        own = np.sort(own)
        share = np.searchsorted(own, new, side="right") / len(own)
        out.append([round(float(x), 3) for x in share])
    return out


def _several_terms(vectors: sp.csr_matrix, cands: np.ndarray, liked: np.ndarray) -> np.ndarray:
    """For each (candidate, liked paper) pair: do they share two or more terms, none of them
    carrying more than :data:`REASON_MAX_TERM_SHARE` of their similarity?"""
    prod = vectors[cands].multiply(vectors[liked]).tocsr()
    prod.eliminate_zeros()
    shared = np.diff(prod.indptr)
    if not prod.nnz:
        return np.zeros(len(cands), dtype=bool)
    # reduceat gives garbage for an empty row (and needs starts < nnz): such rows share no term
    starts = np.minimum(prod.indptr[:-1], prod.nnz - 1)
    total = np.add.reduceat(prod.data, starts)
    top = np.maximum.reduceat(prod.data, starts)
    return (shared >= 2) & (top <= REASON_MAX_TERM_SHARE * np.maximum(total, 1e-12))


#: Candidates a liked paper's similarities are spread over (:func:`_spread`): at most this
#: many, evenly spaced, so a reason costs the same at 250 and 50,000 candidates.
SPREAD_SAMPLE = 1024


def _spread(rec, ctx, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each paper's (``rows``: pidx) similarity to the
    candidates being ranked, estimated over :data:`SPREAD_SAMPLE` of them."""
    cands = ctx.candidates
    if len(cands) > SPREAD_SAMPLE:
        cands = cands[np.linspace(0, len(cands) - 1, SPREAD_SAMPLE).astype(np.int64)]
    sims = rec.content.similarity(np.asarray(rows, dtype=np.int64), cands)
    return sims.mean(axis=1), np.maximum(sims.std(axis=1), 1e-9)


def _block_closest(rec, profiles, ctx, tops, which: str):
    """For each shown paper, the person's liked (``which="liked"``) or disliked paper it is
    most similar to (first on ties) and that similarity; ``None`` for people without any.

    Similarities are computed for the shown papers only (a block's few hundred), against
    every rated paper of the block, in one product.
    """
    B = len(profiles)
    rated = [np.asarray(getattr(p, which), dtype=np.int64).ravel() for p in profiles]
    lens = np.fromiter((len(x) for x in rated), np.int64, B)
    widths = np.fromiter((len(t) for t in tops), np.int64, B)
    out: list[list[int] | None] = [None] * B
    sims_out: list[np.ndarray | None] = [None] * B
    if not lens.any():
        return out, sims_out
    k, m = int(lens.max()), int(widths.max())
    pad_rated = np.zeros((B, k), np.int64)
    pad_top = np.zeros((B, m), np.int64)
    for i in range(B):
        pad_rated[i, : lens[i]] = rated[i]
        pad_top[i, : widths[i]] = tops[i]
    shown = ctx.candidates[pad_top]  # (B, m) pidx
    rows, row_of = np.unique(pad_rated, return_inverse=True)
    cols, col_of = np.unique(shown, return_inverse=True)
    table = rec.content.similarity(rows, cols)
    row_of, col_of = row_of.reshape(B, k), col_of.reshape(B, m)
    sims = table[row_of[:, :, None], col_of[:, None, :]]  # (B, k, m)
    sims[np.arange(k)[None, :] >= lens[:, None]] = -np.inf  # padding never wins
    arg = np.argmax(sims, axis=1)  # (B, m)
    best = np.take_along_axis(pad_rated, arg, axis=1)
    best_sim = np.take_along_axis(sims, arg[:, None, :], axis=1)[:, 0, :]
    for i in np.flatnonzero(lens):
        out[i] = best[i, : widths[i]].tolist()
        sims_out[i] = best_sim[i, : widths[i]]
    return out, sims_out


def _row_entries(M: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Positions in ``M.data``/``M.indices`` of the stored entries of ``rows``, row by row."""
    starts, ends = M.indptr[rows], M.indptr[rows + 1]
    lens = ends - starts
    return np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))


def _block_terms(rec, profiles, ctx, tops, terms_list, n_terms: int = 3):
    """Top TF-IDF terms each shown paper shares with its person's likes and query.

    A person's profile is the sum of their liked papers' vectors plus their query's,
    summed with one ``bincount`` per block of people into a dense (people x terms)
    scratch: no sparse products, so one person costs a few array operations.
    """
    B = len(profiles)
    lens = np.fromiter((len(t) for t in tops), np.int64, B)
    if not lens.sum():
        return [[] for _ in range(B)]
    V = rec.item_vectors.shape[1]
    vectors = rec.item_vectors
    # each person's liked rows, in pidx order (a canonical summation order)
    liked = [np.sort(np.asarray(p.liked, dtype=np.int64).ravel()) for p in profiles]
    n_liked = np.fromiter((len(x) for x in liked), np.int64, B)
    flat_liked = np.concatenate([np.zeros(0, np.int64), *liked])
    liked_owner = np.repeat(np.arange(B), n_liked)
    queries = {i: rec.text.transform([p.query]).tocsr() for i, p in enumerate(profiles) if p.query}
    owner = np.repeat(np.arange(B), lens)
    X = vectors[ctx.candidates[np.concatenate(tops).astype(np.int64)]].tocsr()
    X.sort_indices()  # products in term order: ties keep the first term
    x_row = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    x_owner = owner[x_row]
    # profile weight at each (shown paper, term), a block of people at a time
    weight = np.zeros(len(X.data), dtype=np.float64)
    step = 256
    x_starts = np.searchsorted(x_owner, np.arange(0, B + step, step))
    l_starts = np.searchsorted(liked_owner, np.arange(0, B + step, step))
    for j, start in enumerate(range(0, B, step)):
        stop = min(start + step, B)
        rows = flat_liked[l_starts[j] : l_starts[j + 1]]
        whose = liked_owner[l_starts[j] : l_starts[j + 1]] - start
        at = _row_entries(vectors, rows)
        per_row = vectors.indptr[rows + 1] - vectors.indptr[rows]
        keys = [np.repeat(whose, per_row) * V + vectors.indices[at].astype(np.int64)]
        vals = [vectors.data[at].astype(np.float64)]
        for i in range(start, stop):
            if i in queries:
                q = queries[i]
                keys.append((i - start) * V + q.indices.astype(np.int64))
                vals.append(q.data.astype(np.float64))
        scratch = np.bincount(
            np.concatenate(keys), weights=np.concatenate(vals), minlength=(stop - start) * V
        )
        a, b = x_starts[j], x_starts[j + 1]
        weight[a:b] = scratch[(x_owner[a:b] - start) * V + X.indices[a:b]]
    prod = X.data * weight
    nz = np.flatnonzero(prod)
    order = nz[np.lexsort((-prod[nz], x_row[nz]))]
    rows = x_row[order]
    first = np.searchsorted(rows, rows)  # start of each row's run
    keep = order[np.arange(len(order)) - first < n_terms]
    words = [str(terms_list[t]) for t in X.indices[keep].tolist()]
    bounds = np.searchsorted(x_row[keep], np.arange(X.shape[0] + 1)).tolist()
    per_item = [tuple(words[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    out, at = [], 0
    for k in lens.tolist():
        out.append(per_item[at : at + k])
        at += k
    return out
