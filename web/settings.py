"""Settings (``/settings``): digest, muted keywords, reset, export/import, Atom feed URL."""

from __future__ import annotations

import math
import re

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from recommender import digest, library, ratings_io, store
from recommender.accounts import timezones, valid_timezone

from .auth import login_required
from .cards import SCORE_SCALE
from .db import get_db, get_settings
from .interests import person_interests

bp = Blueprint("settings", __name__)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_MUTED = 100
LAYOUT_NAMES = {"cards": "Cards", "compact": "A compact list"}


def _int_in(form, name: str, low: int, high: int, errors: dict, label: str) -> int | None:
    try:
        value = int(form.get(name, ""))
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        errors[name] = f"{label} must be a whole number from {low} to {high}."
    return value


def parse_digest_form(form) -> tuple[dict, dict[str, str]]:
    """Digest settings from the form: ``(values, {field: problem})``."""
    errors: dict[str, str] = {}
    values: dict = {"digest_enabled": 1 if form.get("digest_enabled") else 0}
    cadence = form.get("digest_cadence", "")
    if cadence not in ("daily", "weekly"):
        errors["digest_cadence"] = "Choose daily or weekly."
    values["digest_cadence"] = cadence
    # The page disables the weekday while "daily" is chosen, and a disabled field is not
    # sent: a daily digest without one keeps the weekday stored for a later weekly choice.
    if cadence != "daily" or form.get("digest_weekday", "") != "":
        values["digest_weekday"] = _int_in(form, "digest_weekday", 0, 6, errors, "The weekday")
    values["digest_hour"] = _int_in(form, "digest_hour", 0, 23, errors, "The hour")
    values["digest_size"] = _int_in(form, "digest_size", 1, 100, errors, "The number of papers")
    timezone = form.get("timezone", "").strip()
    if not valid_timezone(timezone):
        errors["timezone"] = (
            f"“{timezone}” is not a time zone name. Use an IANA name such as Europe/Berlin."
        )
    values["timezone"] = timezone
    raw_score = form.get("min_score", "").strip()
    try:
        values["min_score"] = float(raw_score) if raw_score else None
        if values["min_score"] is not None and not math.isfinite(values["min_score"]):
            raise ValueError("not finite")  # inf: no digest ever; nan: no JSON
    except ValueError:
        errors["min_score"] = "The minimum score must be a number, or empty for no minimum."
    return values, errors


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``"1 rating"``, ``"2 ratings"``: a number and its noun in the right number."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def import_message(result: dict) -> str:
    """What an import did, from :func:`recommender.store.import_ratings`'s result."""
    message = f"Imported {count(result['imported'], 'rating')} ({result['unchanged']} unchanged)."
    unmatched = result["unmatched"]
    if len(unmatched) == 1:
        message += f" 1 paper is not in paperfeed and was skipped: “{unmatched[0]}”."
    elif unmatched:
        message += (
            f" {len(unmatched)} papers are not in paperfeed and were skipped, "
            f"e.g. “{unmatched[0]}”."
        )
    return message


def muted_message(n: int) -> str:
    if n == 0:
        return "No muted keywords: no paper is hidden."
    which = "it" if n == 1 else "one of them"
    return f"{count(n, 'muted keyword')}: papers containing {which}, or a longer form, are hidden."


def settings_page(user: dict, errors: dict | None = None) -> dict:
    db = get_db()
    token = user["feed_token"]
    return {
        "user": user,
        "errors": errors or {},
        "ratings": len(store.rating_values(db, user["id"])),
        "atom_url": token and get_settings().base_url + url_for("atom.feed", token=token),
        "timezones": timezones(),
        "weekdays": WEEKDAYS,
        "formats": ratings_io.FORMATS,
        "score_scale": SCORE_SCALE,
        "layouts": LAYOUT_NAMES,
        "library_count": len(store.library_papers(db, user["id"])),
        "digest_problem": (problem := store.digest_problem(db, user["id"])),
        "last_digest": last_digest_words(db, user, problem),
        "follows": store.followed_authors(db, user["id"]),
        "interests": person_interests(user["id"]),
        "default_interest": store.DEFAULT_INTEREST,
        "mail_problem": store.account_mail_problem(db, user["id"]),
    }


def last_digest_words(db, user: dict, problem: dict | None = None) -> str:
    """The answer to "I got no email": why digests are off, or what the last period did,
    and a digest that could not be delivered (``problem``) if a later period hides it."""
    if not user["digest_enabled"]:
        return "Digests are off."
    if not user["email_confirmed_at"]:
        return "Digests go only to a confirmed address: confirm yours first."
    last = store.last_digest(db, user["id"])
    words = digest.outcome_words(last, user["timezone"])
    if problem and (last is None or last["period"] != problem["period"]):
        words += " " + digest.problem_words(problem)
    return words


def import_upload(user: dict, upload, fmt: str) -> tuple[str, str]:
    """Parse and apply an uploaded ratings file: ``(flash category, message)``."""
    if upload is None or not upload.filename:
        return "error", "Choose a file to import."
    try:
        text = ratings_io.decode_ratings_file(upload.read(), source=upload.filename)
        if fmt not in ratings_io.FORMATS:
            fmt = ratings_io.guess_format(upload.filename, text)
        records = ratings_io.read_ratings(text, fmt, source=upload.filename)
    except ratings_io.RatingsFormatError as exc:
        return "error", f"Nothing was imported. {exc}"
    try:
        result = store.import_ratings(
            get_db(), user["id"], [(r.external_id, r.title, r.value, r.interest) for r in records]
        )
    except store.InterestError as exc:  # an interest's name in the file; nothing was written
        return "error", f"Nothing was imported. {exc}"
    return "success", import_message(result)


@bp.get("/settings")
@login_required
def show():
    return render_template("settings.html", **settings_page(g.user))


@bp.get("/settings.json")
@login_required
def show_json():
    keys = ("email", "email_confirmed_at", "keywords", "muted_keywords", *store.SETTING_COLUMNS)
    page = settings_page(g.user)
    return jsonify(
        {
            **{k: g.user[k] for k in keys},
            "ratings": page["ratings"],
            "atom_url": page["atom_url"],
            "last_digest": page["last_digest"],
            "interests": list(page["interests"]),
            "mail_problem": page["mail_problem"],
            "digest_problem": page["digest_problem"],
        }
    )


@bp.post("/settings/digest")
@login_required
def save_digest():
    values, errors = parse_digest_form(request.form)
    if errors:
        flash("Nothing was saved: fix the fields marked below.", "error")
        return render_template("settings.html", **settings_page(g.user, errors)), 400
    store.update_settings(get_db(), g.user["id"], values)
    flash("Digest settings saved.", "success@digest")
    return redirect(url_for("settings.show") + "#digest")


@bp.post("/settings/reading")
@login_required
def save_reading():
    layout = request.form.get("feed_layout", "")
    if layout not in store.FEED_LAYOUTS:
        flash(f"“{layout}” is not a layout: choose cards or compact.", "error")
        return render_template("settings.html", **settings_page(g.user)), 400
    store.update_settings(get_db(), g.user["id"], {"feed_layout": layout})
    flash(f"Your feed now lists papers as {LAYOUT_NAMES[layout].lower()}.", "success@reading")
    return redirect(url_for("settings.show") + "#reading")


@bp.post("/settings/muted")
@login_required
def save_muted():
    words = re.split(r"[\n,]", request.form.get("muted", ""))[:MAX_MUTED]
    muted = store.set_muted_keywords(get_db(), g.user["id"], words)
    flash(muted_message(len(muted)), "success@muted")
    return redirect(url_for("settings.show") + "#muted")


@bp.post("/settings/reset")
@login_required
def reset():
    if request.form.get("confirm") != "yes":
        flash("Tick the box to confirm: nothing was reset.", "error@reset")
        return redirect(url_for("settings.show") + "#reset")
    removed = store.delete_all_ratings(get_db(), g.user["id"])
    flash(f"Personalisation reset: {count(removed, 'rating')} forgotten.", "success")
    return redirect(url_for("onboarding.welcome"))


@bp.get("/settings/export")
@login_required
def export():
    fmt = request.args.get("format", "csv")
    if fmt not in ratings_io.FORMATS:
        fmt = "csv"
    records = ratings_io.records_from_rows(store.ratings_for_export(get_db(), g.user["id"]))
    filename = f"paperfeed-ratings.{ratings_io.EXTENSIONS[fmt]}"
    return Response(
        ratings_io.write_ratings(records, fmt),
        mimetype=ratings_io.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.post("/settings/import")
@login_required
def import_ratings():
    upload, fmt = request.files.get("file"), request.form.get("format", "")
    category, message = import_upload(g.user, upload, fmt)
    if category == "error":
        flash(message, category)
        return render_template("settings.html", **settings_page(g.user)), 400
    # Shown in the section the redirect scrolls to, not above it at the top of the page.
    flash(message, f"{category}@import")
    return redirect(url_for("settings.show") + "#import")


def import_library_upload(user: dict, upload, pasted: str) -> tuple[str, str]:
    """Read an uploaded library file (or pasted ids) and import it: ``(category, message)``."""
    try:
        if upload is not None and upload.filename:
            text = ratings_io.decode_ratings_file(upload.read(), source=upload.filename)
            fmt, source = library.guess_library_format(upload.filename, text), upload.filename
        elif pasted.strip():
            text, source = pasted, "the pasted list"
            fmt = library.guess_library_format("", text)
        else:
            return "error", "Choose a library file, or paste arXiv ids or DOIs."
        entries = library.read_library(text, fmt, source=source)
    except ratings_io.RatingsFormatError as exc:
        return "error", f"Nothing was imported. {exc}"
    return "success", library.import_library(
        get_db(), user["id"], entries, cfg=get_settings().sources
    ).message()


@bp.post("/settings/library")
@login_required
def import_library():
    category, message = import_library_upload(
        g.user, request.files.get("file"), request.form.get("ids", "")
    )
    back = "onboarding.welcome" if request.form.get("back") == "welcome" else "settings.show"
    flash(message, f"{category}@library")
    return redirect(url_for(back) + "#library")


@bp.post("/settings/atom")
@login_required
def atom_token():
    if request.form.get("action") == "revoke":
        store.revoke_feed_token(get_db(), g.user["id"])
        flash("Your Atom feed is off; the old address no longer works.", "success@atom")
    else:
        store.rotate_feed_token(get_db(), g.user["id"])
        flash("New Atom feed address created; any old address no longer works.", "success@atom")
    return redirect(url_for("settings.show") + "#atom")
