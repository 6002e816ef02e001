"""Both themes, light and dark (``prefers-color-scheme``), pass WCAG AA contrast on every
page a reader sees: each visible piece of text against the background it is drawn on,
measured in a real browser from the computed colours."""

from __future__ import annotations

import pytest

from ._web import NEW_DAY
from .test_browser import browser  # noqa: F401  (a fixture)
from .test_browser_reading import new_page, shoot, sign_up, site  # noqa: F401

pytestmark = pytest.mark.browser

#: Every visible text node's contrast with the backgrounds under it (alpha composited),
#: as WCAG 2.x defines it; large text (24 px, or 18.66 px bold) needs 3, the rest 4.5.
CONTRAST = """() => {
  const channel = v => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const luminance = ([r, g, b]) =>
    0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const parse = text => {
    const inside = text.match(/rgba?\\(([^)]+)\\)/)[1];
    const parts = inside.split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { rgb: parts.slice(0, 3), a: parts.length > 3 ? parts[3] : 1 };
  };
  const over = (top, under) => under.map((v, i) => top.rgb[i] * top.a + v * (1 - top.a));
  const backdrop = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255]);
  };
  const results = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    const style = getComputedStyle(el);
    if (!el.getClientRects().length || style.visibility === "hidden") continue;
    if (style.opacity === "0") continue;
    if (el.closest(".visually-hidden, :disabled, dialog:not([open]), option, datalist")) continue;
    const bg = backdrop(el);
    const fg = over(parse(style.color), bg);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
    results.push({
      text: walker.currentNode.textContent.trim().slice(0, 40),
      where: el.tagName.toLowerCase() + "." + String(el.className).split(" ").join("."),
      ratio: Math.round((hi + 0.05) / (lo + 0.05) * 100) / 100,
      need: large ? 3 : 4.5,
    });
  }
  return { body: luminance(parse(getComputedStyle(document.body).backgroundColor).rgb), results };
}"""


def low_contrast(page) -> tuple[float, list[dict]]:
    measured = page.evaluate(CONTRAST)
    assert measured["results"], "no text measured"
    return measured["body"], [r for r in measured["results"] if r["ratio"] < r["need"]]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_wcag_aa_contrast_in_both_themes(browser, site, scheme):  # noqa: F811
    base, _ = site
    page = new_page(browser, color_scheme=scheme)
    page.goto(f"{base}/login")
    pages = {"login": None}
    failures = {"login": low_contrast(page)}
    sign_up(page, base, f"contrast-{scheme}@example.org")
    # A liked card, a disliked one, the match badges and reasons, the callout.
    page.locator(".paper").nth(0).locator("button.btn-like").click()
    page.wait_for_function("document.querySelector('[data-rerank]').dataset.reranked === '1'")
    page.locator(".paper").nth(1).locator("button.btn-dislike").click()
    page.wait_for_function("document.querySelector('[data-rerank]').dataset.reranked === '2'")
    for name, path in [
        ("feed", None),
        ("feed-day-without-dump", "/?window=2026-01-01"),
        ("feed-week", "/?window=week"),
        ("search", "/search?q=speech"),
        ("search-any", "/search?q=speech+zzzqqq"),
        ("settings", "/settings"),
        ("welcome", "/welcome"),
        ("trending", "/trending"),
        ("paper", None),
        ("day", f"/?window={NEW_DAY}&seen=1"),
    ]:
        if name == "paper":
            page.goto(f"{base}/")
            page.locator(".paper .details-link").first.click()
            page.wait_for_url("**/papers/*")
        elif path:
            page.goto(base + path)
        pages[name] = page.url
        failures[name] = low_contrast(page)
    # The compact list, with its current row open.
    page.goto(f"{base}/settings")
    page.select_option("#feed_layout", "compact")
    page.click("#reading button[type=submit]")
    page.wait_for_url("**/settings#reading")
    failures["settings-saved"] = low_contrast(page)
    page.goto(f"{base}/")
    page.keyboard.press("j")
    failures["compact"] = low_contrast(page)
    shoot(page, f"theme-{scheme}-compact.png")
    bodies = {name: body for name, (body, _) in failures.items()}
    if scheme == "dark":
        assert all(b < 0.02 for b in bodies.values()), bodies  # the page is dark
    else:
        assert all(b > 0.85 for b in bodies.values()), bodies
    bad = {name: low for name, (_, low) in failures.items() if low}
    assert not bad, bad
    page.context.close()
