"""Interests in a real browser: create one from the feed with the keyboard, file likes under
it from the like form, and see a section per interest (issue 18)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .test_browser import browser  # noqa: F401  (a fixture)
from .test_browser_reading import new_page, sign_up, site  # noqa: F401  (site: a fixture)

pytestmark = pytest.mark.browser

#: Where to save screenshots of the pages (none unless set: they are not test output).
SHOTS = os.environ.get("PAPERFEED_SHOTS_DIR")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name))


def create_interest_by_keyboard(page, name: str) -> None:
    """Open the feed's Interests box and create one, keys only."""
    if not page.eval_on_selector("#interests", "d => d.open"):
        page.focus("#interests summary")
        page.keyboard.press("Enter")
    page.focus("#new-interest")
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    page.wait_for_selector(f".flash:has-text('{name}')")


def like_under(page, card: int, interest: str) -> str:
    """Like the ``card``-th paper of the page, filed under ``interest``; its title."""
    paper = page.locator("article.paper").nth(card)
    title = paper.locator(".paper-title a").inner_text()
    paper.locator("select.rate-interest").select_option(label=interest)
    paper.locator("button.btn-like").click()
    page.wait_for_selector(f"#{paper.get_attribute('id')} .btn-like[aria-pressed=true]")
    return title


def test_create_an_interest_and_file_likes_under_it(browser, site):  # noqa: F811
    base, _ = site
    for width, height, suffix in ((1280, 900, "1280"), (390, 844, "390")):
        page = new_page(browser, {"width": width, "height": height})
        sign_up(page, base, f"interests-{suffix}@example.org", keywords="")
        page.goto(f"{base}/?window=week")
        assert page.locator(".interest-section").count() == 0  # one interest: as before
        create_interest_by_keyboard(page, "Speech")
        create_interest_by_keyboard(page, "Vision")
        speech = [like_under(page, n, "Speech") for n in (0, 1)]
        vision = like_under(page, 2, "Vision")
        page.goto(f"{base}/?window=week")
        sections = page.locator(".interest-section .section-title").all_inner_texts()
        assert [s.split(" ·")[0] for s in sections] == ["Speech", "Vision"]
        listed = page.locator("article.paper").evaluate_all(
            "cards => cards.map(c => c.dataset.paperId)"
        )
        assert len(listed) == len(set(listed))  # a paper once, in its best section
        shot(page, f"feed-two-interests-{suffix}.png")
        page.locator(".interest-section .section-title").nth(1).scroll_into_view_if_needed()
        shot(page, f"feed-second-section-{suffix}.png")
        # Settings lists them with their likes; rename there, keys only.
        page.goto(f"{base}/settings#interests")
        rows = page.locator("#interests li.interest").all_inner_texts()
        assert len(rows) == 3 and "2 likes" in page.locator("li.interest").nth(1).inner_text()
        page.fill("#interests li.interest >> nth=2 >> input[name=name]", "Computer vision")
        page.keyboard.press("Enter")
        page.wait_for_selector(".flash:has-text('Computer vision')")
        shot(page, f"interests-settings-{suffix}.png")
        data = page.evaluate("fetch('/interests.json').then(r => r.json())")
        assert [(i["name"], i["likes"]) for i in data["interests"]] == [
            ("General", 0),
            ("Speech", 2),
            ("Computer vision", 1),
        ]
        # The picker shows one interest alone.
        page.goto(f"{base}/?window=week")
        page.select_option("#interest-picker", label="Speech")
        page.wait_for_url(lambda url: "interest=" in url)
        assert page.locator(".interest-section").count() == 0
        assert page.locator("article.paper").count() > 0
        assert not {speech[0], speech[1], vision} & set(
            page.locator(".paper-title a").all_inner_texts()
        )
        page.context.close()


def test_a_long_interest_name_does_not_widen_the_page_on_a_phone(browser, site):  # noqa: F811
    """Found by a user trial: an interest named with the 80 characters the form allows made
    the feed and settings scroll sideways at 390 px (a select sizes to its longest option)."""
    base, _ = site
    page = new_page(browser, {"width": 390, "height": 844})
    sign_up(page, base, "long-interest@example.org", keywords="")
    page.goto(f"{base}/?window=week")
    name = "Reinforcement learning for dexterous robot manipulation from tactile sim to real"
    create_interest_by_keyboard(page, name[:80])
    create_interest_by_keyboard(page, "Vision")
    for path in ("/?window=week", "/settings"):
        page.goto(base + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    shot(page, "long-interest-settings-390.png")


def test_a_like_after_the_session_ended_goes_to_the_login_and_back(browser, site):  # noqa: F811
    """Found by a user trial: after logging out in another tab, Like showed a 2.5 s toast,
    "Please log in first.", with no way to the login. It now opens the login page, which
    comes back to the feed."""
    base, _ = site
    page = new_page(browser)
    sign_up(page, base, "stale-tab@example.org", keywords="")
    page.goto(f"{base}/?window=week")
    other = page.context.new_page()  # another tab of the same browser
    other.goto(f"{base}/settings")
    other.click("form[action='/logout'] button")
    other.wait_for_url(f"{base}/login")
    page.locator("article.paper").first.locator("button.btn-like").click()
    page.wait_for_url(f"{base}/login?next=*")
    assert "next=%2F%3Fwindow%3Dweek" in page.url
