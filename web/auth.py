"""Accounts: sign up, log in and out, confirm the email address, change the password,
reset a forgotten one (rate-limited per address and client), delete the account.
Also who is logged in (:func:`load_user`) and :func:`login_required` for the other
blueprints.

Sessions hold the user id and the account's ``auth_version``; changing the
password bumps the version, which ends every other session and spends the reset
link (its payload carries the version it was made for).
"""

from __future__ import annotations

import functools
import re
import time
from email.message import EmailMessage
from email.utils import make_msgid

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
from werkzeug.security import check_password_hash, generate_password_hash

from recommender import store
from recommender.mail import PermanentMailError, TransientMailError, send_message
from recommender.tokens import TokenError, make_token, read_token

from .db import get_db, get_settings
from .errors import error_response, wants_json

bp = Blueprint("auth", __name__)

MIN_PASSWORD, MAX_PASSWORD = 8, 1024
#: Failed logins allowed per address (and per client IP) within the window.
RATE_WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_CLIENT = 20
#: Reset emails asked for per address (and per client IP) within an hour.
RESET_WINDOW_SECONDS = 3600
MAX_RESETS_PER_EMAIL = 3
MAX_RESETS_PER_CLIENT = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_dummy_hash: list[str] = []


# -- who is logged in ----------------------------------------------------------------------


def load_user() -> None:
    """Set ``g.user`` from the session; a session of an old ``auth_version`` is dropped."""
    g.user = None
    uid = session.get("uid")
    if uid is None or request.endpoint == "static":
        return
    user = store.get_user(get_db(), uid)
    if user is None or user["auth_version"] != session.get("av"):
        session.clear()
        return
    g.user = user


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
    """``target`` if it is a path on this site, else the default page (no open redirects)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return url_for(default)


def _log_in(user: dict) -> None:
    session.clear()  # a fresh session on login: no fixation
    session["uid"], session["av"] = user["id"], user["auth_version"]
    session.permanent = True


# -- account logic (kept out of the views so each view stays one call) ---------------------


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"Use at least {MIN_PASSWORD} characters."
    if len(password) > MAX_PASSWORD:
        return f"Use at most {MAX_PASSWORD} characters."
    return None


def create_account(email: str, password: str) -> tuple[dict | None, dict[str, str]]:
    """A new account, or ``(None, {field: problem})``."""
    email = email.strip()
    errors = {}
    if not _EMAIL.match(email) or len(email) > 254:
        errors["email"] = "Enter an email address like ada@example.org."
    if problem := password_problem(password):
        errors["password"] = problem
    if errors:
        return None, errors
    db = get_db()
    try:
        user_id = store.create_user(db, email, generate_password_hash(password))
    except store.UserExists:
        return None, {
            "email": "An account with this address exists. Log in, or reset the password."
        }
    user = store.get_user(db, user_id)
    send_account_email(user, "confirm")
    return user, {}


def _password_matches(user: dict | None, password: str) -> bool:
    if user is None or not user["password_hash"]:
        # Hash anyway, so a missing account answers as slowly as a wrong password.
        if not _dummy_hash:
            _dummy_hash.append(generate_password_hash("not a password"))
        check_password_hash(_dummy_hash[0], password)
        return False
    return check_password_hash(user["password_hash"], password)


def authenticate(email: str, password: str, client: str) -> tuple[dict | None, str | None, int]:
    """``(user, None, 200)`` on success, else ``(None, message, status)``; rate-limited."""
    db, now = get_db(), time.time()
    recent = store.recent_login_failures(db, email, client, now - RATE_WINDOW_SECONDS)
    if recent["email"] >= MAX_FAILURES_PER_EMAIL or recent["addr"] >= MAX_FAILURES_PER_CLIENT:
        wait = RATE_WINDOW_SECONDS - (now - (recent["oldest"] or now))
        minutes = max(1, round(wait / 60))
        return (
            None,
            (
                f"Too many failed logins. Try again in about {minutes} minute"
                f"{'s' if minutes != 1 else ''}, or reset your password."
            ),
            429,
        )
    user = store.get_user_by_email(db, email)
    if not _password_matches(user, password):
        store.record_login_failure(db, email, client, now)
        return None, "That email and password do not match.", 401
    store.clear_login_failures(db, email)
    return user, None, 200


def send_account_email(user: dict, kind: str) -> bool:
    """Email a confirm (``kind="confirm"``) or reset (``"reset"``) link; False if not sent."""
    settings = get_settings()
    if kind == "confirm":
        token = make_token(
            current_app.config["SECRET_KEY"], "confirm-email", [user["id"], user["email"]]
        )
        link = settings.base_url + url_for("auth.confirm", token=token)
        subject = "Confirm your paperfeed address"
    else:
        token = make_token(
            current_app.config["SECRET_KEY"], "reset-password", [user["id"], user["auth_version"]]
        )
        link = settings.base_url + url_for("auth.reset_password", token=token)
        subject = "Reset your paperfeed password"
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.mail_from, user["email"], subject
    message["Message-ID"] = make_msgid(domain="paperfeed")
    message.set_content(render_template(f"email/account_{kind}.txt", link=link, user=user))
    try:
        send_message(settings, message)
    except (TransientMailError, PermanentMailError, OSError):
        flash("We could not send the email just now. Try again in a few minutes.", "error")
        return False
    return True


def user_from_token(purpose: str, token: str) -> tuple[dict | None, str | None]:
    """The account a confirm/reset link is for, or ``(None, why it cannot be used)``."""
    try:
        uid, marker = read_token(current_app.config["SECRET_KEY"], purpose, token)
    except TokenError as exc:
        return None, str(exc)
    except (TypeError, ValueError):
        return None, "This link is not valid."
    user = store.get_user(get_db(), uid)
    if purpose == "confirm-email":
        stale = user is None or user["email"] != marker
    else:
        stale = user is None or user["auth_version"] != marker
    if stale:
        return None, "This link was used already or is out of date. Ask for a new one."
    return user, None


# -- views -----------------------------------------------------------------------------------


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if request.method == "GET":
        return render_template("auth/signup.html", errors={}, email="")
    user, errors = create_account(request.form.get("email", ""), request.form.get("password", ""))
    if errors:
        email = request.form.get("email", "")
        return render_template("auth/signup.html", errors=errors, email=email), 400
    _log_in(user)
    flash(f"Welcome! We sent a confirmation link to {user['email']}.", "success")
    return redirect(url_for("onboarding.welcome"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = request.values.get("next", "")
    if request.method == "GET":
        return render_template("auth/login.html", error=None, email="", next=next_url)
    email = request.form.get("email", "").strip()
    user, error, status = authenticate(
        email, request.form.get("password", ""), request.remote_addr or ""
    )
    if user is None:
        return render_template("auth/login.html", error=error, email=email, next=next_url), status
    _log_in(user)
    return redirect(safe_next(next_url))


@bp.post("/logout")
def logout():
    session.clear()
    flash("You are logged out.", "success")
    return redirect(url_for("auth.login"))


@bp.get("/confirm/<token>")
def confirm(token: str):
    # Mail scanners open links: confirming takes a button press (POST), not the GET.
    user, error = user_from_token("confirm-email", token)
    if user is None:
        return error_response(400, error)
    return render_template("auth/confirm.html", user=user, token=token)


@bp.post("/confirm/<token>")
def confirm_post(token: str):
    user, error = user_from_token("confirm-email", token)
    if user is None:
        return error_response(400, error)
    store.confirm_email(get_db(), user["id"], user["email"])
    flash(f"Thanks: {user['email']} is confirmed. Digests will reach you there.", "success")
    return redirect(url_for("feed.index"))


@bp.post("/confirm/resend")
@login_required
def resend_confirmation():
    if send_account_email(g.user, "confirm"):
        flash(f"We sent a new confirmation link to {g.user['email']}.", "success")
    return redirect(url_for("settings.show"))


@bp.route("/reset", methods=["GET", "POST"])
def reset_request():
    if request.method == "GET":
        return render_template("auth/reset_request.html")
    email = request.form.get("email", "").strip()
    if not _EMAIL.match(email) or len(email) > 254:
        return render_template(
            "auth/reset_request.html", error="Enter an email address like ada@example.org."
        ), 400
    now = time.time()
    by_email, by_addr = store.count_reset_request(
        get_db(), email, request.remote_addr or "", now, now - RESET_WINDOW_SECONDS
    )
    if by_email > MAX_RESETS_PER_EMAIL or by_addr > MAX_RESETS_PER_CLIENT:
        # Counted whether or not the account exists, so this reveals nothing about it.
        return error_response(
            429,
            "Too many reset requests. Use the link we already sent (it works for two hours), "
            "or try again in an hour.",
        )
    user = store.get_user_by_email(get_db(), email)
    if user is not None:
        send_account_email(user, "reset")
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
    user, error = user_from_token("reset-password", token)
    if user is None:
        return error_response(400, error)
    if request.method == "GET":
        return render_template("auth/reset_form.html", token=token, error=None)
    password = request.form.get("password", "")
    if problem := password_problem(password):
        return render_template("auth/reset_form.html", token=token, error=problem), 400
    store.set_password(get_db(), user["id"], generate_password_hash(password))
    _log_in(store.get_user(get_db(), user["id"]))
    flash("Your password is changed; other sessions are logged out.", "success")
    return redirect(url_for("feed.index"))


@bp.post("/account/password")
@login_required
def change_password():
    """Change the password (the current one is required); other sessions end."""
    db, now = get_db(), time.time()
    email = g.user["email"]
    recent = store.recent_login_failures(db, email, "", now - RATE_WINDOW_SECONDS)
    if recent["email"] >= MAX_FAILURES_PER_EMAIL:
        flash("Too many wrong passwords. Try again later, or reset your password.", "error")
        return redirect(url_for("settings.show") + "#password")
    if not _password_matches(g.user, request.form.get("current_password", "")):
        store.record_login_failure(db, email, request.remote_addr or "", now)
        flash("Your current password is not right: the password was not changed.", "error")
        return redirect(url_for("settings.show") + "#password")
    new = request.form.get("new_password", "")
    if problem := password_problem(new):
        flash(f"The new password was not saved. {problem}", "error")
        return redirect(url_for("settings.show") + "#password")
    store.set_password(db, g.user["id"], generate_password_hash(new))
    _log_in(store.get_user(db, g.user["id"]))  # this session stays, with the new version
    flash("Your password is changed; your other sessions are logged out.", "success")
    return redirect(url_for("settings.show"))


@bp.post("/account/delete")
@login_required
def delete_account():
    if not _password_matches(g.user, request.form.get("password", "")):
        flash("That password is not right: your account was not deleted.", "error")
        return redirect(url_for("settings.show") + "#delete")
    store.delete_user(get_db(), g.user["id"])
    session.clear()
    flash("Your account and all its data are deleted.", "success")
    return redirect(url_for("auth.signup"))
