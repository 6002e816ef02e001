// paperfeed: progressive enhancement. Every button is a real form that works without
// this file; with it, ratings are sent by fetch (no reload) and re-rank the papers below
// at once, abstracts collapse, j/k/l/d/u/o/x work on lists of papers (? lists them), the
// place in a list survives Back, and the settings form follows what is chosen.
// No inline script or style anywhere: this file is all the page's JavaScript (CSP).
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var csrf = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };
  var LABELS = { like: ["Like", "Liked"], dislike: ["Dislike", "Disliked"] };

  function toast(text) {
    var el = document.createElement("div");
    el.className = "toast";
    el.setAttribute("role", "status");
    el.textContent = text;
    document.body.appendChild(el);
    setTimeout(function () { el.remove(); }, 2500);
  }

  function showRating(form, rating) {
    form.dataset.rating = String(rating || 0);
    var card = form.closest(".paper, .paper-page");
    ["like", "dislike"].forEach(function (kind) {
      var button = form.querySelector(".btn-" + kind);
      var on = (kind === "like" && rating === 1) || (kind === "dislike" && rating === -1);
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.lastChild.textContent = " " + LABELS[kind][on ? 1 : 0];
    });
    form.querySelector(".btn-undo").hidden = !rating;
    if (card) {
      card.classList.toggle("is-liked", rating === 1);
      card.classList.toggle("is-disliked", rating === -1);
    }
    var counter = document.querySelector("[data-like-count]");
    if (counter) {
      counter.textContent = String(document.querySelectorAll('.rate[data-rating="1"]').length);
    }
  }

  // -- re-ranking after a rating ------------------------------------------------------------
  // The rating request carries the ids of the page's cards; the answer has their new order
  // (unrated papers only) with each one's match and reason. Cards above the rated one and
  // rated cards keep their places (so undo and the reading position stay put); the unrated
  // cards below it are put in the new order.

  function cardsOf(list) {
    return Array.prototype.slice.call(list.querySelectorAll(".paper"));
  }
  function isRated(card) {
    var form = card.querySelector("form.rate");
    return form && form.dataset.rating !== "0";
  }

  function updateSignals(card, info) {
    var signals = card.querySelector(".signals");
    if (!signals) {
      signals = document.createElement("p");
      signals.className = "signals";
      card.querySelector(".paper-title").after(signals);
    }
    var match = signals.querySelector(".match");
    if (info.match) {
      if (!match) {
        match = document.createElement("span");
        signals.prepend(match);
      }
      // as the card macro renders it: the level, then " match" (hidden in the compact list)
      match.className = "match match-" + info.match.level;
      match.title = info.match.title;
      match.textContent = info.match.level;
      var word = document.createElement("span");
      word.className = "match-word";
      word.textContent = " match";
      match.append(word);
    } else if (match) {
      match.remove();
    }
    var reason = signals.querySelector(".reason");
    if (info.reason) {
      if (!reason) {
        reason = document.createElement("span");
        reason.className = "reason";
        signals.append(reason);
      }
      reason.textContent = info.reason;
    } else if (reason) {
      reason.remove();
    }
  }

  function applyRerank(form, data) {
    var list = form.closest("[data-rerank]");
    var card = form.closest(".paper");
    if (!list || !card || !data.order) { return; }
    var all = cardsOf(list);
    all.forEach(function (c) {
      var info = data.cards && data.cards[c.dataset.paperId];
      if (info) { updateSignals(c, info); }
    });
    var rank = {};
    data.order.forEach(function (id, i) { rank[String(id)] = i; });
    var below = all.slice(all.indexOf(card) + 1);
    var movable = below.filter(function (c) { return !isRated(c) && c.dataset.paperId in rank; });
    var sorted = movable.slice().sort(function (a, b) {
      return rank[a.dataset.paperId] - rank[b.dataset.paperId];
    });
    var next = 0;
    var sequence = below.map(function (c) {
      return movable.indexOf(c) >= 0 ? sorted[next++] : c;
    });
    var moved = sequence.filter(function (c, i) { return c !== below[i]; });
    var anchor = card;
    sequence.forEach(function (c) {
      if (anchor.nextElementSibling !== c) { anchor.after(c); }
      anchor = c;
    });
    moved.forEach(function (c) {
      c.classList.remove("is-moved");
      void c.offsetWidth; // restart the animation
      c.classList.add("is-moved");
    });
    var status = document.getElementById("rerank-status");
    if (status) {
      status.textContent = moved.length
        ? "Re-ranked: " + moved.length + " paper" + (moved.length === 1 ? "" : "s") + " below moved."
        : "Re-ranked: the order below stays the same.";
    }
    list.dataset.reranked = String(Number(list.dataset.reranked || 0) + 1);
  }

  function rate(form, value) {
    var body = new FormData(form);
    body.set("value", value);
    var list = form.closest("[data-rerank]");
    if (list) {
      body.set("visible", cardsOf(list).map(function (c) { return c.dataset.paperId; }).join(","));
    }
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    return fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 401) {
        // the session ended (logged out in another tab): log in, then back to this page
        window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
        return;
      }
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.error || "Could not save the rating."); }
        showRating(form, data.rating);
        applyRerank(form, data);
      });
    }).catch(function (error) {
      toast(error.message || "Could not save the rating.");
    }).finally(function () {
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList.contains("rate") || !window.fetch) { return; }
    event.preventDefault();
    var submitter = event.submitter || form.querySelector("button[value=like]");
    rate(form, submitter.value);
  });

  // Fields to copy from (the Atom feed address) select their text on focus. Here, not
  // in an onfocus attribute: the Content-Security-Policy allows no inline script.
  document.addEventListener("focusin", function (event) {
    if (event.target.hasAttribute("data-select-on-focus")) { event.target.select(); }
  });

  // Selects and checkboxes that change the listing submit their form at once.
  document.addEventListener("change", function (event) {
    if (event.target.hasAttribute("data-autosubmit")) { event.target.form.submit(); }
  });

  // A read-only address (the Atom feed) is selected whole when focused, ready to copy.
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) {
      event.target.select();
    }
  });

  // -- abstracts ----------------------------------------------------------------------------
  // Long abstracts start collapsed with a "more" toggle.
  function clampAbstracts() {
    document.querySelectorAll(".paper .abstract").forEach(function (p) {
      p.classList.add("is-clamped");
      if (p.scrollHeight <= p.clientHeight + 2) { p.classList.remove("is-clamped"); return; }
      var more = document.createElement("button");
      more.type = "button";
      more.className = "more";
      more.textContent = "Show more";
      more.setAttribute("aria-expanded", "false");
      more.addEventListener("click", function () { toggle(p, more); });
      p.after(more);
    });
  }
  function toggle(p, more) {
    var open = p.classList.toggle("is-clamped") === false;
    more.textContent = open ? "Show less" : "Show more";
    more.setAttribute("aria-expanded", open ? "true" : "false");
  }

  // -- keyboard -----------------------------------------------------------------------------
  // j/k move between papers, l/d like/dislike, u undo, o open, x expand, ? shows the list.
  // A key that acts on a paper before any j acts on the first one.
  var current = -1;
  function cards() { return Array.prototype.slice.call(document.querySelectorAll("[data-keyboard] .paper")); }
  function select(index, scroll) {
    var list = cards();
    if (!list.length) { return; }
    current = Math.max(0, Math.min(index, list.length - 1));
    list.forEach(function (c, i) { c.classList.toggle("is-current", i === current); });
    list[current].focus({ preventScroll: true });
    if (scroll !== false) { list[current].scrollIntoView({ block: "nearest", behavior: "smooth" }); }
  }
  function shortcuts() { return document.getElementById("shortcuts"); }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable) { return; }
    var dialog = shortcuts();
    if (dialog && dialog.open) { return; } // the dialog handles Esc itself
    if (event.key === "?") {
      if (dialog && dialog.showModal) { dialog.showModal(); event.preventDefault(); }
      return;
    }
    var list = cards();
    if (!list.length || "jkldoux".indexOf(event.key) < 0 || event.key.length !== 1) { return; }
    if (current < 0 && event.key !== "j" && event.key !== "k") { select(0); }
    var card = list[current];
    var form = card && card.querySelector("form.rate");
    switch (event.key) {
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "l": if (form) { rate(form, "like"); } break;
      case "d": if (form) { rate(form, "dislike"); } break;
      case "u": if (form) { rate(form, "undo"); } break;
      case "o": if (card) { remember(); card.querySelector(".paper-title a").click(); } break;
      case "x": if (card) { var m = card.querySelector(".more"); if (m) { m.click(); } } break;
    }
    event.preventDefault();
  });
  document.addEventListener("focusin", function (event) {
    var card = event.target.closest && event.target.closest("[data-keyboard] .paper");
    if (card) {
      var list = cards();
      current = list.indexOf(card);
      list.forEach(function (c) { c.classList.toggle("is-current", c === card); });
    }
  });

  // -- the place in a list survives Back ----------------------------------------------------
  // Leaving a list page keeps the current paper and where it sat on the screen; coming back
  // (Back, or a reload) selects that paper again at the same height, even when cards above
  // it have changed meanwhile (a paper rated on its page leaves the feed).
  var placeKey = "paperfeed:place:" + location.pathname + location.search;
  function remember() {
    var list = cards();
    if (!list.length || !window.sessionStorage) { return; }
    var card = list[current];
    var place = { y: window.scrollY, id: null, top: 0 };
    if (card) {
      place.id = card.dataset.paperId;
      place.top = card.getBoundingClientRect().top;
    }
    try { sessionStorage.setItem(placeKey, JSON.stringify(place)); } catch (e) { /* full or off */ }
  }
  function restore() {
    var nav = performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
    if (!nav || (nav.type !== "back_forward" && nav.type !== "reload")) { return; }
    var place;
    try { place = JSON.parse(sessionStorage.getItem(placeKey) || "null"); } catch (e) { place = null; }
    if (!place) { return; }
    var list = cards();
    var index = -1;
    list.forEach(function (c, i) { if (c.dataset.paperId === place.id) { index = i; } });
    if (index >= 0) {
      select(index, false);
      window.scrollBy(0, list[index].getBoundingClientRect().top - place.top);
    } else {
      window.scrollTo(0, place.y);
    }
  }
  if ("scrollRestoration" in history && document.querySelector("[data-keyboard]")) {
    history.scrollRestoration = "manual"; // restore() does it, after abstracts collapse
  }
  window.addEventListener("pagehide", remember);
  window.addEventListener("pageshow", function (event) {
    // From the back-forward cache the page is as it was; give the focus back.
    if (event.persisted && current >= 0) { select(current, false); }
  });

  // -- settings -----------------------------------------------------------------------------
  function settingsForm() {
    // The weekday only means something for weekly digests.
    document.querySelectorAll("[data-controls-weekday]").forEach(function (cadence) {
      var weekday = document.getElementById(cadence.dataset.controlsWeekday);
      if (!weekday) { return; }
      var sync = function () { weekday.disabled = cadence.value === "daily"; };
      cadence.addEventListener("change", sync);
      sync();
    });
    // A time zone never chosen (still UTC) defaults to the browser's.
    var zone = document.querySelector("#timezone[data-browser-default]");
    var browser = "";
    try { browser = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { browser = ""; }
    // Sign-up sends the browser's zone along, so the first digest comes at a local hour.
    document.querySelectorAll("input[data-browser-zone]").forEach(function (input) {
      input.value = browser;
    });
    var known = zone && document.querySelector('#timezones option[value="' + browser.replace(/"/g, "") + '"]');
    if (zone && known && browser !== "UTC" && zone.value === "UTC") {
      zone.value = browser;
      var hint = document.getElementById("timezone-hint");
      if (hint) {
        hint.textContent = "Filled in from your browser (it was UTC): save to keep it.";
      }
    }
  }

  function start() {
    clampAbstracts();
    settingsForm();
    restore();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
