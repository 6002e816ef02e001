"""Accounts: the address and password rules, hashing, sign-up, log-in and its limits,
what binds sessions and links to an account, and the account emails.

The web app's forms and ``paperfeed user add`` both call :func:`create_account`: one
path, one password rule.

**What a session or link is bound to.** Ids are never reused (``AUTOINCREMENT``), and
each account has a random ``auth_secret``. A session carries the account id and
:func:`fingerprint` ``(user, "session")``; a reset link, the fingerprint for
``"reset"``; both are compared with the account's current secret on every use. Logout,
a password change and a reset replace the secret, which ends every session of the
account (logout is "log out everywhere": the cookie that was copied before it is dead)
and spends every reset link. A confirmation link names the id and the address it was
sent to, so it survives a logout; it cannot confirm another account's address.

**Failed logins.** A lock on an address lets anyone lock its owner out, and a lock on a
client address locks out a whole NAT. So a browser that has logged in to the account
before carries a signed *device cookie* (:func:`device_token`), and it is limited on
its own (:data:`MAX_FAILURES_PER_DEVICE` in the window): a stranger's guesses, from any
address, never stop the owner on a browser they used before. Browsers without one share
the per-address and per-client limits as before; the owner on a new browser during an
attack can use a reset link. (A per-address delay instead of a lock would let a
patient attacker keep guessing, and still slow the owner down.)
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
import zoneinfo
from dataclasses import dataclass
from functools import cache

from sqlite_utils import Database
from werkzeug.security import check_password_hash, generate_password_hash

from . import store
from .config import Settings
from .mail import (
    MailServerUnavailable,
    PermanentMailError,
    TransientMailError,
    account_message,
    open_mailer,
    server_key,
)
from .tokens import TokenError, make_token, read_token

log = logging.getLogger(__name__)

MIN_PASSWORD, MAX_PASSWORD = 8, 1024
MAX_EMAIL = 254
#: Failed logins allowed within the window: per address and per client IP (browsers
#: without a device cookie), and per browser that has logged in before.
RATE_WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_CLIENT = 20
MAX_FAILURES_PER_DEVICE = 5
#: Reset emails asked for per address (and per client IP) within an hour.
RESET_WINDOW_SECONDS = 3600
MAX_RESETS_PER_EMAIL = 3
MAX_RESETS_PER_CLIENT = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_dummy_hash: list[str] = []


class AccountError(ValueError):
    """A sign-up or password that cannot be accepted: ``problems`` maps a field to why."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {why}" for field, why in problems.items()))


@dataclass(frozen=True)
class LoginResult:
    """``user`` and the ``device`` cookie to give the browser on success; else ``error``
    to show and the HTTP ``status`` (401, 429)."""

    user: dict | None
    error: str | None = None
    status: int = 200
    device: str | None = None


# -- rules and hashes ------------------------------------------------------------------------


def email_problem(email: str) -> str | None:
    email = email.strip()
    if not _EMAIL.match(email) or len(email) > MAX_EMAIL:
        return "Enter an email address like ada@example.org."
    local, _, domain = email.rpartition("@")
    if not local.isascii():
        # Mail to it needs SMTPUTF8 from every server on the way: refused here rather than
        # accepted and never delivered (a domain in any script is fine: it has an ASCII form).
        return "Use an address with no accents or other non-ASCII letters before the @."
    try:
        domain.encode("idna")
    except UnicodeError:
        return "Enter an email address like ada@example.org."
    return None


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or None. The one password rule."""
    if len(password) < MIN_PASSWORD:
        return f"Use at least {MIN_PASSWORD} characters."
    if len(password) > MAX_PASSWORD:
        return f"Use at most {MAX_PASSWORD} characters."
    return None


def hash_password(password: str) -> str:
    return generate_password_hash(password)  # scrypt, salted


def password_matches(user: dict | None, password: str) -> bool:
    if user is None or not user["password_hash"]:
        # Hash anyway, so a missing account answers as slowly as a wrong password.
        if not _dummy_hash:
            _dummy_hash.append(generate_password_hash("not a password"))
        check_password_hash(_dummy_hash[0], password)
        return False
    return check_password_hash(user["password_hash"], password)


# -- what binds sessions and links to an account ---------------------------------------------


def fingerprint(user: dict, purpose: str) -> str:
    """A digest of the account's current ``auth_secret`` for ``purpose`` ("session",
    "reset"): stored in the cookie or link instead of the secret itself."""
    key = user["auth_secret"].encode()
    return hmac.new(key, purpose.encode(), hashlib.sha256).hexdigest()[:32]


def _same(user: dict | None, purpose: str, claimed: object) -> bool:
    return (
        user is not None
        and isinstance(claimed, str)
        and hmac.compare_digest(fingerprint(user, purpose), claimed)
    )


def session_user(db: Database, user_id: object, claimed: object) -> dict | None:
    """The account a session is for, if its fingerprint matches the account's secret."""
    if not isinstance(user_id, int):
        return None
    user = store.get_user(db, user_id)
    return user if _same(user, "session", claimed) else None


def end_sessions(db: Database, user: dict) -> None:
    """Log out everywhere: every session and reset link of the account stops working."""
    store.rotate_auth_secret(db, user["id"])


def link_token(secret_key: str, user: dict, kind: str) -> str:
    """The token of a confirmation (``kind="confirm"``) or reset (``"reset"``) link. Both
    are bound to the account's secret, so logging out everywhere, a reset or a password
    change voids them; a confirmation link also names the address it confirms."""
    if kind == "confirm":
        payload = [user["id"], user["email"], fingerprint(user, "confirm")]
        return make_token(secret_key, "confirm-email", payload)
    return make_token(secret_key, "reset-password", [user["id"], fingerprint(user, "reset")])


def user_from_link(
    db: Database, secret_key: str, kind: str, token: str
) -> tuple[dict | None, str | None]:
    """The account a confirm/reset link is for, or ``(None, why it cannot be used)``."""
    purpose = "confirm-email" if kind == "confirm" else "reset-password"
    try:
        payload = read_token(secret_key, purpose, token)
        if kind == "confirm":  # links made before they were bound to the secret: refused
            user_id, address, marker = payload
        else:
            user_id, marker = payload
    except TokenError as exc:
        return None, str(exc)
    except (TypeError, ValueError):
        return None, "This link is not valid."
    user = store.get_user(db, user_id) if isinstance(user_id, int) else None
    if kind == "confirm":
        usable = _same(user, "confirm", marker) and user["email"] == address
    else:
        usable = _same(user, "reset", marker)
    if not usable:
        return None, "This link was used already or is out of date. Ask for a new one."
    return user, None


def device_token(secret_key: str, user: dict, nonce: str = "") -> str:
    """A signed device cookie: this browser logged in to ``user`` (a new nonce unless
    ``nonce``, the browser's current one, is given)."""
    nonce = nonce or secrets.token_urlsafe(16)
    return make_token(secret_key, "device", [user["id"], nonce])


def device_nonce(secret_key: str, token: str | None, user: dict | None) -> str:
    """The nonce of a valid device cookie for ``user``'s account, else ''."""
    if not token or user is None:
        return ""
    try:
        user_id, nonce = read_token(secret_key, "device", token)
    except (TokenError, TypeError, ValueError):
        return ""
    if not isinstance(nonce, str) or user_id != user["id"]:
        return ""
    return nonce


# -- sign up, log in, passwords --------------------------------------------------------------


@cache
def timezones() -> tuple[str, ...]:
    """Every IANA time zone name zoneinfo knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


def valid_timezone(name: str) -> bool:
    """An IANA name zoneinfo knows (``Europe/Berlin``), not a path or an abbreviation."""
    if name not in timezones() and name != "UTC":
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def create_account(
    db: Database,
    settings: Settings,
    secret_key: str,
    email: str,
    password: str,
    *,
    confirmed: bool = False,
    timezone: str | None = None,
) -> tuple[dict, bool]:
    """A new account and whether a confirmation email was queued (never when
    ``confirmed``); :class:`AccountError` naming each field that is wrong, or that the
    address has an account (the CLI says so; the sign-up form uses :func:`sign_up`).

    ``timezone``: the zone the sign-up form's browser reported; kept if it is a zone
    zoneinfo knows (the digest's hour is local), else the account starts on UTC.
    """
    email = email.strip()
    problems = {}
    if problem := email_problem(email):
        problems["email"] = problem
    if problem := password_problem(password):
        problems["password"] = problem
    if problems:
        raise AccountError(problems)
    try:
        user_id = store.create_user(db, email, hash_password(password))
    except store.UserExists:
        raise AccountError(
            {"email": "An account with this address exists already. Log in, or reset the password."}
        ) from None
    if timezone and valid_timezone(timezone):
        store.update_settings(db, user_id, {"timezone": timezone})
    if confirmed:
        store.confirm_email(db, user_id, email)
    user = store.get_user(db, user_id)
    if not confirmed:
        queue_account_email(db, user, "confirm")
    return user, not confirmed


def sign_up(
    db: Database,
    settings: Settings,
    secret_key: str,
    email: str,
    password: str,
    *,
    timezone: str | None = None,
) -> str:
    """The sign-up form: the address it answers "check your inbox" for, the same for an
    address that has an account and one that has not, so the answer tells nobody which.

    A new address gets its account and a confirmation link; an address that has an account
    gets a mail saying someone tried to sign up, with a reset link, and the account is left
    as it is; one whose address was never confirmed gets a new confirmation link instead
    (its first mail may never have arrived: signing up again is how a person asks for it).
    Both hash the password and only queue a mail (:func:`deliver_account_mails` sends it),
    so they take the same time. :class:`AccountError` for a malformed form.
    """
    try:
        create_account(db, settings, secret_key, email, password, timezone=timezone)
    except AccountError as exc:
        if set(exc.problems) != {"email"} or email_problem(email.strip()):
            raise
        user = store.get_user_by_email(db, email.strip())
        if user is not None:
            kind = "signup_exists" if user["email_confirmed_at"] else "confirm"
            queue_account_email(db, user, kind)
    return email.strip()


def _locked(recent: dict, limit_email: int, limit_addr: int, now: float) -> str | None:
    if recent["email"] < limit_email and recent["addr"] < limit_addr:
        return None
    wait = RATE_WINDOW_SECONDS - (now - (recent["oldest"] or now))
    minutes = max(1, round(wait / 60))
    return (
        f"Too many failed logins. Try again in about {minutes} minute"
        f"{'s' if minutes != 1 else ''}, or reset your password."
    )


def log_in(
    db: Database,
    secret_key: str,
    email: str,
    password: str,
    *,
    client: str,
    device: str | None = None,
) -> LoginResult:
    """Check a login, within the limits. ``client`` is the IP address; ``device`` the
    browser's device cookie, if it has one."""
    email, now = email.strip(), time.time()
    user = store.get_user_by_email(db, email)
    nonce = device_nonce(secret_key, device, user)
    recent = store.recent_login_failures(db, email, client, now - RATE_WINDOW_SECONDS, device=nonce)
    limits = (
        (MAX_FAILURES_PER_DEVICE, MAX_FAILURES_PER_DEVICE)
        if nonce
        else (MAX_FAILURES_PER_EMAIL, MAX_FAILURES_PER_CLIENT)
    )
    if locked := _locked(recent, *limits, now):
        return LoginResult(None, locked, 429)
    if not password_matches(user, password):
        store.record_login_failure(db, email, client, now, device=nonce)
        return LoginResult(None, "That email and password do not match.", 401)
    store.clear_login_failures(db, email, device=nonce)
    return LoginResult(user, device=device_token(secret_key, user, nonce))


def check_current_password(db: Database, user: dict, password: str, *, client: str) -> str | None:
    """Why the password a logged-in person typed (to change it, or delete the account) is
    refused, or None. Their own mistakes are limited per account, apart from logins."""
    now, device = time.time(), f"account:{user['id']}"
    recent = store.recent_login_failures(
        db, user["email"], client, now - RATE_WINDOW_SECONDS, device=device
    )
    if recent["email"] >= MAX_FAILURES_PER_DEVICE:
        return "Too many wrong passwords. Try again later, or reset your password."
    if not password_matches(user, password):
        store.record_login_failure(db, user["email"], client, now, device=device)
        return "Your current password is not right."
    return None


def set_password(db: Database, user: dict, password: str) -> dict:
    """Store a new password (ending every session and reset link); the updated account.
    :class:`AccountError` if the password breaks the rule."""
    if problem := password_problem(password):
        raise AccountError({"password": problem})
    store.set_password(db, user["id"], hash_password(password))
    return store.get_user(db, user["id"])


def request_reset(
    db: Database, settings: Settings, secret_key: str, email: str, *, client: str
) -> tuple[int, str | None]:
    """Email a reset link if an account has this address: ``(200, None)`` whether or not
    it does (the answer reveals nothing), ``(400 or 429, why)`` otherwise."""
    email = email.strip()
    if problem := email_problem(email):
        return 400, problem
    now = time.time()
    by_email, by_addr = store.count_reset_request(
        db, email, client, now, now - RESET_WINDOW_SECONDS
    )
    if by_email > MAX_RESETS_PER_EMAIL or by_addr > MAX_RESETS_PER_CLIENT:
        # Counted whether or not the account exists, so this reveals nothing about it.
        return 429, (
            "Too many reset requests. Use the link we already sent (it works for two hours), "
            "or try again in an hour."
        )
    user = store.get_user_by_email(db, email)
    if user is not None:
        queue_account_email(db, user, "reset")
    return 200, None


# -- account emails ---------------------------------------------------------------------------

LINK_PATHS = {"confirm": "/confirm/", "reset": "/reset/", "signup_exists": "/reset/"}
#: Seconds before the first retry of a mail the server deferred; doubles each try.
MAIL_RETRY_AFTER = 30
MAIL_RETRY_MAX = 3600
#: Tries before a mail that keeps failing temporarily is given up (about 4 hours).
MAIL_MAX_TRIES = 10
#: A mail claimed longer ago than this by a sender that never finished is sent again.
MAIL_LEASE = 600


def queue_account_email(db: Database, user: dict, kind: str) -> int:
    """Queue a confirm (``kind="confirm"``), reset (``"reset"``) or "someone tried to sign
    up with your address" (``"signup_exists"``) mail; the scheduler sends it. No network
    I/O: a web request may call this."""
    return store.queue_account_mail(db, user["id"], kind, user["email"], time.time())


@dataclass
class MailRun:
    """What one :func:`deliver_account_mails` run did, by mail id."""

    sent: list[int]
    retrying: list[int]
    failed: list[int]
    dropped: list[int]


def deliver_account_mails(
    db: Database, settings: Settings, secret_key: str, *, now: float | None = None
) -> MailRun:
    """Send the account mails that are due, one SMTP session for all of them.

    Each link is made now, from the account as it is. A mail whose account changed its
    address since is dropped. A temporary failure (4xx, a timeout) is retried after
    :data:`MAIL_RETRY_AFTER` seconds, doubling, and given up after :data:`MAIL_MAX_TRIES`;
    a server that does not answer ends the run (the other mails wait, untried). A 5xx is
    final for this mail server: the person sees it in settings, and it is tried again
    when the mail server setting changes.
    """
    now = time.time() if now is None else now
    key = server_key(settings)
    claimed = store.claim_account_mails(db, now, lease=MAIL_LEASE, server_key=key)
    run = MailRun([], [], [], [])
    with open_mailer(settings) as mailer:
        for position, mail in enumerate(claimed):
            user = store.get_user(db, mail["user_id"])
            if user is None or user["email"].lower() != mail["address"].lower():
                store.drop_account_mail(db, mail["id"], "the account's address changed")
                run.dropped.append(mail["id"])
                continue
            link = settings.base_url + LINK_PATHS[mail["kind"]]
            link += link_token(
                secret_key, user, "confirm" if mail["kind"] == "confirm" else "reset"
            )
            try:
                message = account_message(settings, mail["kind"], mail["address"], link)
            except (ValueError, UnicodeError) as exc:
                # an address no mail can carry (stored before sign-up refused it): this
                # mail fails, shown in settings; the others in the run go on
                log.warning(
                    "account mail %d to user %d cannot be written: %s", mail["id"], user["id"], exc
                )
                store.fail_account_mail(db, mail["id"], f"the address cannot be mailed: {exc}", key)
                run.failed.append(mail["id"])
                continue
            try:
                mailer.send(message)
            except PermanentMailError as exc:
                log.warning("account mail %d to user %d refused: %s", mail["id"], user["id"], exc)
                store.fail_account_mail(db, mail["id"], str(exc), key)
                run.failed.append(mail["id"])
                continue
            except TransientMailError as exc:
                _retry(db, mail, exc, key, now, run)
                if isinstance(exc, MailServerUnavailable):
                    for rest in claimed[position + 1 :]:
                        store.retry_account_mail(db, rest["id"], now, str(exc), count_try=False)
                        run.retrying.append(rest["id"])
                    break
                continue
            store.mark_account_mail_sent(db, mail["id"], time.time())
            run.sent.append(mail["id"])
    return run


def _retry(db: Database, mail: dict, exc: Exception, key: str, now: float, run: MailRun) -> None:
    tries = mail["tries"] + 1
    if tries >= MAIL_MAX_TRIES:
        store.fail_account_mail(db, mail["id"], f"gave up after {tries} tries: {exc}", key)
        run.failed.append(mail["id"])
        return
    wait = min(MAIL_RETRY_AFTER * 2 ** (tries - 1), MAIL_RETRY_MAX)
    log.warning("account mail %d: %s; next try in %d s", mail["id"], exc, wait)
    store.retry_account_mail(db, mail["id"], now + wait, str(exc))
    run.retrying.append(mail["id"])
