"""The Content-Security-Policy in a real browser: nothing on the pages is blocked, the
scripts still work, and a page cannot be framed by another site."""

from __future__ import annotations

import pytest

from .test_browser import browser, server, sign_up  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_no_page_breaks_the_policy_and_the_scripts_still_run(browser, server):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []
    page.on(
        "console",
        lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.on("pageerror", lambda exc: blocked.append(str(exc)))
    sign_up(page, server, "csp@example.org")
    page.goto(f"{server}/")
    first = page.locator(".paper").first
    first.locator("button[value=like]").click()  # fetch() from app.js, no reload
    page.wait_for_selector(".paper [aria-pressed=true]")
    page.goto(f"{server}/settings")
    page.click("#atom button[value=regenerate]")
    page.wait_for_url(f"{server}/settings*")
    field = page.locator("input[aria-label='Atom feed address']")
    field.focus()  # app.js selects the address (was an inline onfocus)
    selected = page.evaluate(
        "() => { const f = document.activeElement;"
        " return f.value.substring(f.selectionStart, f.selectionEnd); }"
    )
    assert selected.startswith("http") and "/atom/" in selected
    for path in ("/search?q=model", "/welcome", "/login"):
        page.goto(f"{server}{path}")
    assert blocked == []
    # Another site cannot frame paperfeed (clickjacking): the frame stays empty.
    page.set_content(f'<iframe id="f" src="{server}/login"></iframe>')
    page.wait_for_timeout(500)
    frame = page.frame_locator("#f")
    assert frame.locator("input#email").count() == 0
    assert any("frame-ancestors" in text for text in blocked)
    page.close()
