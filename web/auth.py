"""Accounts: sign up, log in and out, confirm the email address, change the password,
reset a forgotten one, delete the account. Also who is logged in (:func:`load_user`)
and :func:`login_required` for the other blueprints.

The rules live in :mod:`recommender.accounts` (shared with ``paperfeed user add``);
each view parses the form, makes one call and renders. A session holds the account id
and a fingerprint of the account's secret, checked on every request; logout, a password
change and a reset replace the secret, so every cookie made before stops working.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from urllib.parse import unquote

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from recommender import accounts, store

from .db import get_db, get_settings
from .errors import error_response, wants_json

bp = Blueprint("auth", __name__)

#: The browser's device cookie (see :mod:`recommender.accounts`: failed-login limits).
DEVICE_COOKIE = "paperfeed_device"
DEVICE_COOKIE_AGE = timedelta(days=365)
MAX_RESETS_PER_EMAIL = accounts.MAX_RESETS_PER_EMAIL
#: A path on this site: "/" then printable ASCII, no space, no backslash, not "//".
#: Browsers drop tabs and newlines and read "\" as "/", so "/\t/evil" would be "//evil".
_SAME_SITE_PATH = re.compile(r"/(?!/)[!-\[\]-~]*")


# -- who is logged in ----------------------------------------------------------------------


def load_user() -> None:
    """Set ``g.user`` from the session; a session the account's secret disowns is dropped."""
    g.user = None
    uid = session.get("uid")
    if uid is None or request.endpoint == "static":
        return
    g.user = accounts.session_user(get_db(), uid, session.get("as"))
    if g.user is None:
        session.clear()


def init_app(app: Flask) -> None:
    app.before_request(load_user)


def login_required(view):
    """Pages redirect to the login form (and back); JSON and fetch() get a 401."""

    @functools.wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            if wants_json() or request.method != "GET":
                return error_response(401)
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(**kwargs)

    return wrapped


def safe_next(target: str | None, default: str = "feed.index") -> str:
    """``target`` if it is a path on this site, else the default page (no open redirects).

    The path is checked as sent and once percent-decoded ("/%09/x" is refused too)."""
    if target and _SAME_SITE_PATH.fullmatch(target):
        path = target.partition("?")[0].partition("#")[0]
        if _SAME_SITE_PATH.fullmatch(unquote(path)):
            return target
    return url_for(default)


def _log_in(user: dict, response):
    """Start a fresh session for ``user`` (no fixation) and remember this browser."""
    flashes = session.get("_flashes")
    session.clear()
    if flashes:
        session["_flashes"] = flashes  # the messages of the view that logs in
    session["uid"], session["as"] = user["id"], accounts.fingerprint(user, "session")
    session.permanent = True
    nonce = accounts.device_nonce(_secret(), request.cookies.get(DEVICE_COOKIE), user)
    response.set_cookie(
        DEVICE_COOKIE,
        accounts.device_token(_secret(), user, nonce),
        max_age=int(DEVICE_COOKIE_AGE.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _client() -> str:
    return request.remote_addr or ""


# -- views -----------------------------------------------------------------------------------


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if request.method != "POST":  # GET or HEAD: the form; never an attempt
        return render_template("auth/signup.html", errors={}, email="")
    email = request.form.get("email", "")
    try:
        address = accounts.sign_up(
            get_db(),
            get_settings(),
            _secret(),
            email,
            request.form.get("password", ""),
            timezone=request.form.get("timezone", "").strip(),
        )
    except accounts.AccountError as exc:
        return render_template("auth/signup.html", errors=exc.problems, email=email), 400
    # The same answer whether or not the address has an account (the mail says which).
    flash(
        f"Check your inbox: we are sending a link to {address}. Open it to finish signing up.",
        "success",
    )
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = request.values.get("next", "")
    if request.method != "POST":  # GET or HEAD: the form; never an attempt
        return render_template("auth/login.html", error=None, email="", next=next_url)
    email = request.form.get("email", "").strip()
    result = accounts.log_in(
        get_db(),
        _secret(),
        email,
        request.form.get("password", ""),
        client=_client(),
        device=request.cookies.get(DEVICE_COOKIE),
    )
    if result.user is None:
        page = render_template("auth/login.html", error=result.error, email=email, next=next_url)
        return page, result.status
    return _log_in(result.user, redirect(safe_next(next_url)))


@bp.post("/logout")
def logout():
    if g.user is not None:
        accounts.end_sessions(get_db(), g.user)  # the cookie dies with the secret
    session.clear()
    flash("You are logged out (on every device).", "success")
    return redirect(url_for("auth.login"))


@bp.get("/confirm/<token>")
def confirm(token: str):
    # Mail scanners open links: confirming takes a button press (POST), not the GET.
    user, error = accounts.user_from_link(get_db(), _secret(), "confirm", token)
    if user is None:
        return error_response(400, error)
    return render_template("auth/confirm.html", user=user, token=token)


@bp.post("/confirm/<token>")
def confirm_post(token: str):
    user, error = accounts.user_from_link(get_db(), _secret(), "confirm", token)
    if user is None:
        return error_response(400, error)
    first = user["email_confirmed_at"] is None
    store.confirm_email(get_db(), user["id"], user["email"])
    if g.user is None and not first:
        # A link opened again proves nothing new (anyone holding the old mail could):
        # it never starts a session. The first use is the sign-up's, which logs in.
        flash(f"{user['email']} is confirmed already: log in to continue.", "success")
        return redirect(url_for("auth.login"))
    flash(f"Thanks: {user['email']} is confirmed. Digests will reach you there.", "success")
    if g.user is None:  # the link of a sign-up: it proves the address, so it logs in
        return _log_in(user, redirect(url_for("onboarding.welcome")))
    return redirect(url_for("feed.index"))


@bp.post("/confirm/resend")
@login_required
def resend_confirmation():
    accounts.queue_account_email(get_db(), g.user, "confirm")
    flash(f"We are sending a new confirmation link to {g.user['email']}.", "success")
    return redirect(url_for("settings.show"))


@bp.route("/reset", methods=["GET", "POST"])
def reset_request():
    if request.method != "POST":  # GET or HEAD: the form; never an attempt
        return render_template("auth/reset_request.html")
    status, problem = accounts.request_reset(
        get_db(), get_settings(), _secret(), request.form.get("email", ""), client=_client()
    )
    if status == 400:
        return render_template("auth/reset_request.html", error=problem), 400
    if status != 200:
        return error_response(status, problem)
    # The same answer either way: the page must not reveal who has an account.
    return render_template(
        "message.html",
        title="Check your email",
        message=(
            "If an account exists for that address, we sent it a link to choose a new password. "
            "The link works for two hours."
        ),
    )


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    user, error = accounts.user_from_link(get_db(), _secret(), "reset", token)
    if user is None:
        return error_response(400, error)
    if request.method != "POST":  # GET or HEAD: the form; never an attempt
        return render_template("auth/reset_form.html", token=token, error=None)
    try:
        user = accounts.set_password(get_db(), user, request.form.get("password", ""))
    except accounts.AccountError as exc:
        error = exc.problems["password"]
        return render_template("auth/reset_form.html", token=token, error=error), 400
    flash("Your password is changed; other sessions are logged out.", "success")
    return _log_in(user, redirect(url_for("feed.index")))


@bp.post("/account/password")
@login_required
def change_password():
    """Change the password (the current one is required); other sessions end."""
    back = redirect(url_for("settings.show") + "#password")
    db = get_db()
    current = request.form.get("current_password", "")
    if problem := accounts.check_current_password(db, g.user, current, client=_client()):
        flash(f"{problem} The password was not changed.", "error")
        return back
    try:
        user = accounts.set_password(db, g.user, request.form.get("new_password", ""))
    except accounts.AccountError as exc:
        flash(f"The new password was not saved. {exc.problems['password']}", "error")
        return back
    flash("Your password is changed; your other sessions are logged out.", "success")
    return _log_in(user, redirect(url_for("settings.show")))  # this session goes on


@bp.post("/account/delete")
@login_required
def delete_account():
    password = request.form.get("password", "")
    if problem := accounts.check_current_password(get_db(), g.user, password, client=_client()):
        flash(f"{problem} Your account was not deleted.", "error")
        return redirect(url_for("settings.show") + "#delete")
    store.delete_user(get_db(), g.user["id"])
    session.clear()
    flash("Your account and all its data are deleted.", "success")
    response = redirect(url_for("auth.signup"))
    response.delete_cookie(DEVICE_COOKIE)
    return response
