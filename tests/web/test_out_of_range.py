"""Ids and page numbers out of range (issue 20, item 7): 404 or 400, never a 500
(they raised OverflowError inside SQLite's parameter binding)."""

from __future__ import annotations

import pytest

from .._web import csrf_token

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "url",
    [f"/papers/{HUGE}", f"/papers/{HUGE}.json", f"/papers/{2**63}", f"/?dump={HUGE}"],
)
def test_an_id_no_row_can_have_is_a_404(ada, url):
    assert ada.get(url).status_code == 404


def test_rating_an_id_no_row_can_have_is_a_404(ada):
    response = ada.post(
        f"/papers/{HUGE}/rate",
        data={"value": "like"},
        headers={"X-CSRFToken": csrf_token(ada), "Accept": "application/json"},
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        f"/search?q=a&page={HUGE}",
        "/search.json?q=model&page=9223372036854775807",
        f"/?page={HUGE}",
        f"/feed.json?page={HUGE}",
    ],
)
def test_a_page_beyond_the_last_possible_is_a_400_naming_the_range(ada, url):
    response = ada.get(url)
    assert response.status_code == 400
    assert "page must be a number from 1 to 10000" in response.get_data(as_text=True)


def test_the_largest_page_still_answers(ada):
    assert ada.get("/search.json?q=model&page=10000").get_json()["papers"] == []
