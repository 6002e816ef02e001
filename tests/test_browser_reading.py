"""The reading experience in a real browser (Playwright driving Debian's headless Chromium).

Re-ranking after a like, the keyboard (``?``, ``l`` first, Back), the settings form
following the browser, and screenshots of every page at 1280 and 390 px wide in
``test-artifacts/`` (with checks of what was wrong in them: an invisible Sign up button,
headings under the sticky header, a three-row phone header).
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import pytest

from recommender import digest, store
from recommender.config import load_settings

from ._web import BROWSER_SITES, PASSWORD, confirm_in_browser, copy_corpus, mails
from .test_browser import ARTIFACTS, browser, titles  # noqa: F401  (browser: a fixture)

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """``(base URL, data dir)`` of a real server on the sample corpus.

    No SECRET_KEY override: the app and the digest job sign with the data dir's key,
    so the links of a digest sent here open here.
    """
    from werkzeug.serving import make_server

    from web import create_app

    data = copy_corpus(tmp_path_factory.mktemp("reading") / "data")
    app = create_app({"DATA_DIR": str(data)})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    BROWSER_SITES[base] = (data, None)
    yield base, data
    httpd.shutdown()
    thread.join(timeout=10)


def new_page(browser, size=DESKTOP, **options):  # noqa: F811
    phone = size["width"] < 600
    # Playwright's wait_for_function evaluates its predicate with eval(), which the app's
    # Content-Security-Policy forbids; the policy itself is checked with the same pages and
    # a like in test_browser_csp.py.
    context = browser.new_context(
        bypass_csp=True,
        viewport=size,
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
        **options,
    )
    return context.new_page()


def sign_up(page, base: str, address: str, keywords: str = "speech recognition") -> None:
    page.goto(f"{base}/signup")
    page.fill("#email", address)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]:has-text('Sign up')")
    confirm_in_browser(page, base, address)
    if keywords:
        page.fill("#keywords", keywords)
        page.click("button:has-text('Save topics')")
    page.goto(f"{base}/")


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)


def current_title(page) -> str:
    return page.locator(".paper.is-current .paper-title a").inner_text()


def test_a_like_reranks_the_papers_below_it_without_a_reload(browser, site):  # noqa: F811
    base, _ = site
    page = new_page(browser)
    sign_up(page, base, "rerank@example.org")
    before = titles(page)
    # Topics alone: the reason names the topic; there are no likes to compare a match with.
    assert page.locator(".paper .reason").first.inner_text() == "matches ‘speech recognition’"
    assert page.locator(".paper .match").count() == 0
    page.evaluate("window.notReloaded = true")
    liked = before[2]
    page.locator(".paper").nth(2).locator("button.btn-like").click()
    page.wait_for_function("document.querySelector('[data-rerank]').dataset.reranked === '1'")
    after = titles(page)
    assert page.evaluate("window.notReloaded") is True
    # The liked card and those above it stay; the ones below are in a new order.
    assert after[:3] == before[:3] and after[2] == liked
    assert sorted(after[3:]) == sorted(before[3:])
    assert after[3:] != before[3:]
    assert "below moved" in page.inner_text("#rerank-status")
    assert page.locator(".paper.is-moved").count() > 0
    shoot(page, "feed-reranked-desktop.png")
    # The new order is the server's ranking after the like: a reload agrees with it.
    page.reload()
    fresh = titles(page)
    assert liked not in fresh
    assert [t for t in fresh if t in after[3:]] == [t for t in after[3:] if t in fresh]
    page.context.close()


def test_undo_puts_the_order_back(browser, site):  # noqa: F811
    base, _ = site
    page = new_page(browser)
    sign_up(page, base, "undo@example.org")
    before = titles(page)
    card = page.locator(".paper").nth(0)
    card.locator("button.btn-like").click()
    page.wait_for_function("document.querySelector('[data-rerank]').dataset.reranked === '1'")
    assert titles(page) != before
    card.locator("button.btn-undo").click()
    page.wait_for_function("document.querySelector('[data-rerank]').dataset.reranked === '2'")
    assert titles(page) == before
    page.context.close()


def test_question_mark_lists_the_shortcuts_and_l_first_likes_the_first_paper(browser, site):  # noqa: F811
    base, _ = site
    page = new_page(browser)
    sign_up(page, base, "keys@example.org")
    assert "x" in page.inner_text(".kbd-help") and "?" in page.inner_text(".kbd-help")
    dialog = page.locator("#shortcuts")
    assert not dialog.is_visible()
    page.keyboard.press("?")
    dialog.wait_for(state="visible")
    text = dialog.inner_text()
    for key, words in [("j", "next"), ("l", "like"), ("x", "expand"), ("o", "open")]:
        assert key in text and words in text
    shoot(page, "shortcuts-desktop.png")
    page.keyboard.press("j")  # keys do nothing while the list is open
    assert page.locator(".paper.is-current").count() == 0
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    # No j yet: l likes the first paper and selects it.
    first = titles(page)[0]
    page.keyboard.press("l")
    page.locator(".paper").first.locator("button.btn-like[aria-pressed=true]").wait_for()
    assert current_title(page) == first
    page.context.close()


def test_focus_and_scroll_survive_back(browser, site):  # noqa: F811
    base, _ = site
    page = new_page(browser)
    sign_up(page, base, "back@example.org")
    for _ in range(6):
        page.keyboard.press("j")
    page.wait_for_timeout(600)  # the smooth scroll settles
    chosen = current_title(page)
    top = page.locator(".paper.is-current").bounding_box()["y"]
    assert page.evaluate("window.scrollY") > 0
    page.keyboard.press("o")
    page.wait_for_url(re.compile(r".*/papers/\d+$"))
    assert page.inner_text("h1") == chosen
    page.go_back()
    page.wait_for_url(f"{base}/")
    page.wait_for_function("document.querySelector('.paper.is-current') !== null")
    assert current_title(page) == chosen
    assert page.evaluate("document.activeElement.classList.contains('is-current')")
    assert abs(page.locator(".paper.is-current").bounding_box()["y"] - top) < 4
    # And the keyboard goes on from there.
    page.keyboard.press("j")
    assert current_title(page) == titles(page)[titles(page).index(chosen) + 1]
    page.context.close()


def test_settings_follow_the_browser_time_zone_and_the_cadence(browser, site):  # noqa: F811
    base, data = site
    page = new_page(browser, timezone_id="Asia/Tokyo")
    sign_up(page, base, "tz@example.org", keywords="")
    # Sign-up stored the browser's zone: no form to save first.
    db = store.open_db(data / "paperfeed.db")
    assert store.get_user_by_email(db, "tz@example.org")["timezone"] == "Asia/Tokyo"
    db.close()
    page.goto(f"{base}/settings")
    assert page.input_value("#timezone") == "Asia/Tokyo"
    weekday = page.locator("#digest_weekday")
    page.select_option("#digest_cadence", "weekly")
    assert weekday.is_enabled()
    page.select_option("#digest_weekday", "2")
    page.select_option("#digest_cadence", "daily")
    assert weekday.is_disabled()
    shoot(page, "settings-daily-desktop.png")
    page.click("#digest button[type=submit]")
    page.wait_for_url(f"{base}/settings#digest")
    assert "Digest settings saved" in page.inner_text(".flashes")
    db = store.open_db(data / "paperfeed.db")
    user = store.get_user_by_email(db, "tz@example.org")
    db.close()
    assert (user["timezone"], user["digest_cadence"]) == ("Asia/Tokyo", "daily")
    # Saved once, the zone is the person's choice: the browser no longer overrides it.
    page.goto(f"{base}/settings")
    assert page.input_value("#timezone") == "Asia/Tokyo"
    assert weekday.is_disabled()
    page.context.close()


def test_sign_up_stores_the_browsers_time_zone(browser, site):  # noqa: F811
    base, _ = site
    page = new_page(browser, timezone_id="America/New_York")
    sign_up(page, base, "newyork@example.org", keywords="")
    settings = page.evaluate("fetch('/settings.json').then(r => r.json())")
    assert settings["timezone"] == "America/New_York"
    page.context.close()


def test_a_chosen_utc_zone_stays_when_the_browser_is_elsewhere(browser, site):  # noqa: F811
    base, _ = site
    page = new_page(browser, timezone_id="UTC")
    sign_up(page, base, "utc@example.org", keywords="")
    page.goto(f"{base}/settings")
    assert page.input_value("#timezone") == "UTC"
    page.context.close()


def send_digest(data, address: str) -> str:
    """Send the person a digest now; the path of its first "Like" link."""
    db = store.open_db(data / "paperfeed.db")
    user = store.get_user_by_email(db, address)
    store.confirm_email(db, user["id"], address)
    now = datetime.now(UTC)
    store.update_settings(
        db, user["id"], {"digest_enabled": 1, "digest_hour": now.hour, "timezone": "UTC"}
    )
    run = digest.send_due_digests(db, load_settings(data), now=now, email=address)
    db.close()
    assert run.sent == 1, run
    body = mails(data)[-1].get_body(("plain",)).get_content()
    return re.search(r"https?://[^/\s]+(/r/\S+/like)", body).group(1)


def top_bar_checks(page) -> None:
    """What the screenshots showed wrong: checked on every page shot."""
    header = page.locator(".topbar").bounding_box()
    heading = page.locator("main h1").first.bounding_box()
    assert heading["y"] - (header["y"] + header["height"]) >= 16, "heading touches the header"
    rows = page.evaluate(
        """() => new Set([...document.querySelectorAll('.topbar-inner > *, .nav > *')]
              .filter(e => e.offsetParent !== null)
              .map(e => Math.round(e.getBoundingClientRect().top / 20))).size"""
    )
    assert rows <= 2, f"the header takes {rows} rows"
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots_of_every_page(browser, site, size):  # noqa: F811
    base, data = site
    tag = "desktop" if size["width"] > 600 else "phone"
    page = new_page(browser, size)
    # Logged out: the feed sends to log in; the Sign up button is visible on the top bar.
    page.goto(f"{base}/")
    page.wait_for_url(re.compile(r".*/login.*"))
    button = page.locator(".topbar a:has-text('Sign up')")
    colours = button.evaluate(
        "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]"
    )
    assert colours[0] != colours[1] and colours[1] not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)")
    top_bar_checks(page)
    shoot(page, f"login-{tag}.png")
    page.goto(f"{base}/signup")
    top_bar_checks(page)
    shoot(page, f"signup-{tag}.png")
    address = f"shots-{tag}@example.org"
    sign_up(page, base, address)
    top_bar_checks(page)
    shoot(page, f"feed-{tag}.png")
    page.goto(f"{base}/settings")
    top_bar_checks(page)
    shoot(page, f"settings-{tag}.png")
    page.locator("#muted").scroll_into_view_if_needed()
    shoot(page, f"settings-muted-{tag}.png")
    page.goto(f"{base}/")
    page.locator(".paper .paper-title a").first.click()
    page.wait_for_url(re.compile(r".*/papers/\d+$"))
    top_bar_checks(page)
    assert page.locator(".similar-list meter").count() > 0
    shoot(page, f"paper-{tag}.png")
    page.locator(".similar").scroll_into_view_if_needed()
    shoot(page, f"paper-similar-{tag}.png")
    # The email's "Like this paper?" page, opened from the digest (logged out).
    like = send_digest(data, address)
    page.context.clear_cookies()
    page.goto(base + like)
    top_bar_checks(page)
    assert page.locator(".like-page .abstract").inner_text().strip()
    primary = page.locator(".like-page button.btn-primary")
    assert primary.is_visible() and "like" in primary.inner_text().lower()
    box = primary.bounding_box()
    assert box["y"] + box["height"] <= size["height"], "the button is below the fold"
    shoot(page, f"email-like-{tag}.png")
    primary.click()
    assert "You liked" in page.inner_text("main")
    page.context.close()


def test_the_import_result_is_in_view_after_the_redirect(browser, site):  # noqa: F811
    base, _ = site
    page = new_page(browser, PHONE)
    sign_up(page, base, "import@example.org", keywords="")
    title = titles(page)[0]
    page.goto(f"{base}/settings")
    csv = f'title,rating\n"{title}",like\n'.encode()
    page.set_input_files(
        "#import input[type=file]",
        files=[{"name": "mine.csv", "mimeType": "text/csv", "buffer": csv}],
    )
    page.click("#import button[type=submit]")
    page.wait_for_url(f"{base}/settings#import")
    message = page.locator("#import .flash")
    assert "Imported 1 rating" in message.inner_text()
    box = message.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
    page.context.close()


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_compact_list_shows_a_line_a_paper_and_triages_by_keyboard(browser, site, size):  # noqa: F811
    base, _ = site
    tag = "desktop" if size["width"] > 600 else "phone"
    page = new_page(browser, size)
    sign_up(page, base, f"compact-{tag}@example.org")
    cards_visible = page.evaluate(VISIBLE_PAPERS)
    # Two likes: enough for the cards to say how well each paper matches.
    for n, card in enumerate((0, 1), start=1):
        page.locator(".paper").nth(card).locator("button.btn-like").click()
        page.wait_for_function(
            f"document.querySelector('[data-rerank]').dataset.reranked === '{n}'"
        )
    page.goto(f"{base}/settings")
    page.select_option("#feed_layout", "compact")
    page.click("#reading button[type=submit]")
    page.wait_for_url(f"{base}/settings#reading")
    assert "compact list" in page.inner_text("#reading .flash")
    page.goto(f"{base}/")
    rows = page.locator(".papers.is-compact .paper")
    assert rows.count() == 20
    line = page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('.paper-title')).lineHeight)"
    )
    heights = [rows.nth(i).bounding_box()["height"] for i in range(rows.count())]
    assert max(heights) < line + 24, (line, heights)  # one line of title, with its padding
    # A row with a match shows it first, before the title; the abstract and authors wait.
    first = rows.first
    badges = page.locator(".is-compact .paper .match")
    assert badges.count() > 0
    badge = badges.first
    title = badge.locator("xpath=ancestor::article").locator(".paper-title")
    assert badge.is_visible() and badge.bounding_box()["x"] < title.bounding_box()["x"]
    # a column of levels: " match" is implied, so a phone keeps its width for the title
    assert badge.inner_text().strip() in {"strong", "good", "fair", "weak"}
    assert not first.locator(".abstract").is_visible()
    assert page.evaluate(VISIBLE_PAPERS) >= 3 * cards_visible
    shoot(page, f"compact-{tag}.png")
    # Keyboard triage: j selects the first row and opens its abstract, l likes it.
    page.keyboard.press("j")
    assert first.locator(".abstract").is_visible()
    liked = current_title(page)
    page.keyboard.press("l")
    page.locator(".paper.is-liked").first.wait_for()
    assert page.locator(".paper.is-liked .paper-title a").first.inner_text() == liked
    shoot(page, f"compact-current-{tag}.png")
    page.context.close()


#: Papers whose top is inside the viewport.
VISIBLE_PAPERS = """() => [...document.querySelectorAll('.paper')]
  .filter(p => { const r = p.getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight; })
  .length"""
