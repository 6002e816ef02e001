"""Every link of a feed page keeps the window it was opened on (a real browser).

The sample corpus's newest dump (2026-11-20) is not dated today, which is what made
"Next →" of ``?window=week`` jump to one day: the page reused the name ``day`` for the
person's local date.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from ._web import NEW_DAY, OLD_DAY
from .test_browser import browser  # noqa: F401  (a fixture)
from .test_browser_reading import new_page, sign_up, site  # noqa: F401  (site: a fixture)

pytestmark = pytest.mark.browser


def query_of(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def chosen_window(page) -> str:
    return page.eval_on_selector("#window", "s => s.value")


def feed_links(page) -> list[str]:
    """The feed's own links on the page: pager and the empty state's links."""
    return page.eval_on_selector_all(
        ".pager a, .empty a", "as => as.map(a => a.href).filter(h => new URL(h).pathname === '/')"
    )


@pytest.mark.parametrize("window", ["week", "today", "3d", OLD_DAY, NEW_DAY])
def test_every_link_of_a_feed_page_keeps_the_window(browser, site, window):  # noqa: F811
    base, _ = site
    page = new_page(browser)
    sign_up(page, base, f"window-{window}@example.org", keywords="")
    page.goto(f"{base}/?window={window}")
    assert chosen_window(page) == window
    heading = page.inner_text(".page-head p")
    # Pager: forward to page 3 and back, every link keeping the window.
    for number in ("2", "3"):
        (next_link,) = [h for h in feed_links(page) if query_of(h).get("page") == number]
        assert query_of(next_link)["window"] == window, next_link
        page.goto(next_link)
        assert chosen_window(page) == window
        assert page.inner_text(".page-head p") == heading
    for link in feed_links(page):
        assert query_of(link)["window"] == window, link
    prev = page.locator(".pager a[rel=prev]").get_attribute("href")
    assert query_of(prev) == {"window": window, "page": "2"}
    # Toggle: "Show rated & seen" submits the picker's form, window included.
    page.check("input[name=seen]")
    page.wait_for_url(lambda url: query_of(url).get("seen") == "1")
    assert query_of(page.url)["window"] == window
    assert chosen_window(page) == window
    for link in feed_links(page):
        assert query_of(link)["window"] == window and query_of(link)["seen"] == "1", link
    page.uncheck("input[name=seen]")
    page.wait_for_url(lambda url: "seen" not in query_of(url))
    assert query_of(page.url)["window"] == window
    # Picker: choosing another window goes there, and its pages keep it.
    other = "week" if window != "week" else OLD_DAY
    page.select_option("#window", other)
    page.wait_for_url(lambda url: query_of(url).get("window") == other)
    assert chosen_window(page) == other
    for link in feed_links(page):
        assert query_of(link)["window"] == other, link
    page.context.close()
