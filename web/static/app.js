// paperfeed: progressive enhancement. Every button is a real form that works without
// this file; with it, ratings are sent by fetch (no reload), abstracts collapse, and
// j/k/l/d/u/o work on lists of papers.
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

  function rate(form, value) {
    var body = new FormData(form);
    body.set("value", value);
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    return fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.error || "Could not save the rating."); }
        showRating(form, data.rating);
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

  // Keyboard: j/k move between papers, l/d like/dislike, u undo, o open, x expand.
  var current = -1;
  function cards() { return Array.prototype.slice.call(document.querySelectorAll("[data-keyboard] .paper")); }
  function select(index) {
    var list = cards();
    if (!list.length) { return; }
    current = Math.max(0, Math.min(index, list.length - 1));
    list.forEach(function (c, i) { c.classList.toggle("is-current", i === current); });
    list[current].focus({ preventScroll: true });
    list[current].scrollIntoView({ block: "nearest", behavior: "smooth" });
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable) { return; }
    var list = cards();
    if (!list.length) { return; }
    var card = list[current];
    var form = card && card.querySelector("form.rate");
    switch (event.key) {
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "l": if (form) { rate(form, "like"); } break;
      case "d": if (form) { rate(form, "dislike"); } break;
      case "u": if (form) { rate(form, "undo"); } break;
      case "o": if (card) { card.querySelector(".paper-title a").click(); } break;
      case "x": if (card) { var m = card.querySelector(".more"); if (m) { m.click(); } } break;
      default: return;
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

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", clampAbstracts);
  } else {
    clampAbstracts();
  }
})();
