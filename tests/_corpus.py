"""A tiny topical corpus shared by the recommender-engine tests."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

TOPICS = {
    "astro": [
        "galaxy cluster dark matter halo survey",
        "supernova light curve telescope survey of galaxies",
        "exoplanet transit telescope photometry of stars",
        "dark matter halo galaxy rotation curve",
        "stellar population galaxy telescope spectroscopy",
        "cosmic microwave background galaxy cluster cosmology",
    ],
    "bio": [
        "protein folding molecular dynamics enzyme",
        "gene expression protein regulation in yeast cells",
        "enzyme kinetics protein binding assay",
        "cell membrane protein transport gene",
        "genome sequencing gene expression cells",
        "protein structure enzyme active site",
    ],
    "ml": [
        "neural network training gradient descent optimisation",
        "deep neural network image classification training",
        "gradient boosting decision trees learning",
        "recurrent neural network language model training",
        "stochastic gradient descent convergence learning rate",
        "convolutional neural network image recognition",
    ],
}


def corpus() -> tuple[list[str], list[str]]:
    """Return (texts, topic of each text), papers grouped by topic in TOPICS order."""
    texts, topics = [], []
    for topic, titles in TOPICS.items():
        texts.extend(titles)
        topics.extend([topic] * len(titles))
    return texts, topics


def topical_likes(topics: list[str], *, per_topic_people: int = 6, new: set[int] = frozenset()):
    """People who each like the papers of one topic (except papers in ``new``)."""
    names = list(TOPICS)
    rows, cols = [], []
    for t, name in enumerate(names):
        papers = [i for i, tp in enumerate(topics) if tp == name and i not in new]
        for p in range(per_topic_people):
            person = t * per_topic_people + p
            for i in papers:
                rows.append(person)
                cols.append(i)
    n_people = len(names) * per_topic_people
    return sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(n_people, len(topics))
    )


def checkerboard(n_people=20, n_items=20, withheld=(0, 0)):
    """People in group g (even/odd) like items of the same parity; one pair is withheld."""
    rows, cols = [], []
    for u in range(n_people):
        for i in range(n_items):
            if u % 2 == i % 2 and (u, i) != withheld:
                rows.append(u)
                cols.append(i)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_people, n_items))
