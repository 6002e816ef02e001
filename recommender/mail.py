"""Delivering email: SMTP when ``PAPERFEED_SMTP_URL`` is set, else ``.eml`` files in the outbox.

The file backend is the default so that ``make run`` needs no mail server; the
outbox folder is ``<data dir>/outbox``. Each file is named after the message's
``Message-ID`` and written atomically (temp file, fsync, ``os.replace``): a file
with that name exists if and only if the message was delivered, which is what
:mod:`recommender.digest` checks when it recovers from a crash.

Errors come in two kinds: :class:`TransientMailError` (worth retrying later:
connection trouble, 4xx replies) and :class:`PermanentMailError` (5xx: retrying
will not help). :class:`MailServerUnavailable` is the transient kind that says
the next message would fail the same way (no connection, a timeout, an outbox
that cannot be written), so a digest run stops after a few in a row instead of
waiting out a timeout for every person.

``PAPERFEED_SMTP_URL`` may end in ``?timeout=SECONDS`` (default 30): how long to
wait for the server at each step (connect, greeting, each reply).

will not help).

Every message paperfeed sends, digest or account mail, is built by :func:`build_message`
(headers, parts, ``Date``, ``Message-ID``) from text rendered by :func:`render_email`
out of the paired templates in ``recommender/templates/email/``.
"""

from __future__ import annotations

import binascii
import contextlib
import re
import smtplib
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from email import policy
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr, getaddresses, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .config import Settings
from .fsio import atomic_write_bytes

SMTP_TIMEOUT = 30
#: Line ends as SMTP wants them, for messages flattened before :meth:`Mailer.send`.
SMTP_POLICY = policy.compat32.clone(linesep="\r\n", max_line_length=998)


class PermanentMailError(Exception):
    """The server refused the message for good (e.g. 5xx): retrying will not help."""


class TransientMailError(Exception):
    """A failure worth retrying later (connection refused, 4xx)."""


class MailServerUnavailable(TransientMailError):
    """No answer from the server (refused, reset, timed out) or an unwritable outbox."""


#: The email templates (``email/*.txt`` and ``*.html``): the library's own, shipped as
#: package data (pyproject ``[tool.setuptools.package-data]``).
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Messages are built with the classic (compat32) API: headers are plain strings we
#: format ourselves, and the text parts are quoted-printable-encoded by :mod:`binascii` in C.
#: The modern API parsed every header through the header registry and encoded the bodies in
#: pure Python: about 4 ms a digest, most of a 10,000-person run's delivery time.
#: Headers may be 998 characters long (RFC 5322): the List-Unsubscribe URL, which has no
#: spaces to fold at, must not be folded or RFC 2047-encoded, or mail clients cannot use it.
MESSAGE_POLICY = policy.compat32.clone(max_line_length=998)
#: Account emails: subject and template per kind.
ACCOUNT_MAILS = {
    "confirm": ("Confirm your paperfeed address", "email/account_confirm.txt"),
    "reset": ("Reset your paperfeed password", "email/account_reset.txt"),
    "signup_exists": (
        "Someone tried to sign up with your address",
        "email/account_signup_exists.txt",
    ),
}


# -- building messages ----------------------------------------------------------------------


@lru_cache(maxsize=4)
def email_templates(folder: Path = TEMPLATES) -> Environment:
    """A plain Jinja environment (recommender/ never imports Flask). HTML is autoescaped."""
    return Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_email(name: str, context: dict, *, templates: Path = TEMPLATES) -> str:
    """The template ``name`` (e.g. ``email/digest.txt``) rendered with ``context``."""
    return email_templates(templates).get_template(name).render(context)


def message_domain(settings: Settings) -> str:
    """The domain of ``Message-ID``s: the From address's, else the public URL's host."""
    return parseaddr(settings.mail_from)[1].rpartition("@")[2] or (
        urlsplit(settings.base_url).hostname or "localhost"
    )


def build_message(
    settings: Settings,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    date: datetime | None = None,
    message_id: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Message:
    """One message from paperfeed to ``to``: text/plain, or multipart/alternative with
    ``html``. ``Date`` is ``date`` (default: now), ``Message-ID`` is ``message_id``
    (default: a fresh one); ``headers`` are added after the standard ones. A line break
    in any header is refused (:class:`ValueError`), as is a ``to`` that is not one address.
    """
    if html is None:
        message: Message = _text_part(text, "plain")
        message["MIME-Version"] = "1.0"
    else:
        message = MIMEMultipart("alternative", policy=MESSAGE_POLICY)
        message.attach(_text_part(text, "plain"))
        message.attach(_text_part(html, "html"))
    standard = (
        ("Subject", _header_text(subject)),
        ("From", _mailbox(settings.mail_from)),
        ("To", _mailbox(to)),
        ("Date", format_datetime(date or datetime.now(UTC))),
        ("Message-ID", message_id or make_msgid(domain=message_domain(settings))),
    )
    for name, value in (*standard, *headers):
        if "\r" in value or "\n" in value:
            raise ValueError(f"line break in the {name} header: {value!r}")
        message[name] = value
    return message


def account_message(settings: Settings, kind: str, to: str, link: str) -> Message:
    """The account email of ``kind`` (a key of :data:`ACCOUNT_MAILS`) carrying ``link``."""
    subject, template = ACCOUNT_MAILS[kind]
    text = render_email(template, {"link": link, "user": {"email": to}})
    return build_message(
        settings, to=to, subject=subject, text=text, headers=[("Auto-Submitted", "auto-generated")]
    )


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    """A UTF-8 text part, quoted-printable (readable in the raw mail, 7-bit safe)."""
    part = MIMENonMultipart("text", subtype, charset="utf-8", policy=MESSAGE_POLICY)
    del part["MIME-Version"]  # only the top level carries it
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))
    return part


def _header_text(value: str) -> str:
    """Unstructured header text, RFC 2047-encoded when it is not ASCII."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def _mailbox(value: str) -> str:
    """``Name <addr>`` with a non-ASCII name encoded; refuses anything that is not one address."""
    name, address = parseaddr(value)
    if not address or "@" not in address or any(c in value for c in "\r\n"):
        raise ValueError(f"not an email address: {value!r}")
    local, _, domain = address.rpartition("@")
    # a domain in any script has an ASCII form (IDNA), which every mail server takes; a
    # non-ASCII local part has none: UnicodeError (sign-up refuses such addresses)
    address = f"{local}@{domain.encode('idna').decode('ascii')}"
    return formataddr((name, address), charset="utf-8")


# -- delivering them ------------------------------------------------------------------------


def send_message(settings: Settings, message: Message) -> None:
    """Deliver one message through the configured backend (one connection per call)."""
    with open_mailer(settings) as mailer:
        mailer.send(message)


def open_mailer(settings: Settings) -> Mailer:
    """A :class:`Mailer` for the configured backend (SMTP if ``smtp_url`` is set, else files)."""
    return Mailer(settings.outbox_dir, settings.smtp_url)


def server_key(settings: Settings) -> str:
    """Which mail server the settings name (scheme, user, host and port; never the
    password): a mail refused by one server is worth a try on another."""
    if not settings.smtp_url:
        return f"file:{settings.outbox_dir}"
    cfg = _parse_smtp_url(settings.smtp_url)
    user = f"{cfg['username']}@" if cfg["username"] else ""
    return f"{'smtps' if cfg['ssl'] else 'smtp'}://{user}{cfg['host']}:{cfg['port']}"


def eml_path(outbox: Path, message_id: str) -> Path:
    """Where the file backend puts the message with this ``Message-ID``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", message_id.strip().strip("<>"))
    if not name.strip("._"):
        raise ValueError(f"unusable Message-ID {message_id!r}")
    return outbox / f"{name}.eml"


def write_eml(outbox: Path, message: Message, raw: bytes | None = None) -> Path:
    """Write ``message`` (or its ``raw`` bytes) to ``<outbox>/<Message-ID>.eml`` atomically
    and durably."""
    outbox.mkdir(parents=True, exist_ok=True)
    message_id = message.get("Message-ID") or ""
    target = (
        eml_path(outbox, message_id)
        if message_id
        else outbox / f"{next(tempfile._get_candidate_names())}.eml"
    )
    # Not "*.eml" until complete: a reader globbing the outbox never sees half a message,
    # and sweep_partial_files finds what a killed writer left (".tmp-*.part").
    data = message.as_bytes() if raw is None else raw
    atomic_write_bytes(target, data, tmp_prefix=".tmp-", tmp_suffix=".part")
    return target


def sweep_partial_files(outbox: Path, *, older_than: float = 3600) -> int:
    """Delete temp files a killed writer left in the outbox; returns how many.

    Only files older than ``older_than`` seconds: a younger one may belong to a
    writer still at work (the web app writes account emails here too).
    """
    if not outbox.is_dir():
        return 0
    cutoff = time.time() - older_than
    swept = 0
    for path in outbox.glob(".tmp-*.part"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                swept += 1
    return swept


def _timeout(raw: str | None) -> float:
    if raw is None:
        return SMTP_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0
    if not 0 < seconds <= 600:
        raise ValueError(f"PAPERFEED_SMTP_URL: timeout must be 0-600 seconds, not {raw!r}")
    return seconds


def _parse_smtp_url(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"}:
        raise ValueError(f"PAPERFEED_SMTP_URL must start with smtp:// or smtps://, not {url!r}")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {
        "ssl": parts.scheme == "smtps",
        "host": parts.hostname or "localhost",
        "port": parts.port or (465 if parts.scheme == "smtps" else 25),
        "starttls": options.get("starttls", "0").lower() in {"1", "true", "yes"},
        "timeout": _timeout(options.get("timeout")),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password or ""),
    }


class Mailer:
    """One delivery session: reuses one SMTP connection for many messages.

    Use as a context manager; :meth:`send` raises :class:`TransientMailError`
    or :class:`PermanentMailError`. After any error the connection is dropped
    and the next :meth:`send` opens a fresh one, so one bad message does not
    poison the ones after it.
    """

    def __init__(self, outbox: Path, smtp_url: str | None = None):
        self.outbox = outbox
        self.smtp = _parse_smtp_url(smtp_url) if smtp_url else None
        self._client: smtplib.SMTP | None = None

    @property
    def backend(self) -> str:
        """``"smtp"`` or ``"file"``."""
        return "smtp" if self.smtp else "file"

    def __enter__(self) -> Mailer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.smtp
        assert cfg is not None
        client_class = smtplib.SMTP_SSL if cfg["ssl"] else smtplib.SMTP
        client = client_class(cfg["host"], cfg["port"], timeout=cfg["timeout"])
        try:
            if cfg["starttls"]:
                client.starttls()
            if cfg["username"]:
                client.login(cfg["username"], cfg["password"])
        except BaseException:
            client.close()
            raise
        return client

    def send(self, message: Message, *, raw: bytes | None = None) -> None:
        """Deliver ``message``; when this returns, the server (or the outbox) has it.

        ``raw``, if given, is the message already flattened with CRLF line ends
        (:data:`SMTP_POLICY`), sent as is: a caller can flatten in one thread while
        another waits on the server.
        """
        if self.smtp is None:
            try:
                write_eml(self.outbox, message, raw)
            except OSError as exc:  # disk full, permissions: an operator can fix it
                raise MailServerUnavailable(f"cannot write to {self.outbox}: {exc}") from exc
            return
        try:
            if self._client is None:
                self._client = self._connect()
            if raw is None:
                refused = self._client.send_message(message)
            else:
                to = message.get_all("To", []) + message.get_all("Cc", [])
                recipients = [a for _, a in getaddresses(to)]
                sender = parseaddr(message["From"])[1]
                refused = self._client.sendmail(sender, recipients, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [code for code, _ in exc.recipients.values()]
            text = "; ".join(f"{rcpt}: {c} {_said(m)}" for rcpt, (c, m) in exc.recipients.items())
            if all(400 <= c < 500 for c in codes):
                raise TransientMailError(f"recipient deferred: {text}") from exc
            raise PermanentMailError(f"recipient refused: {text}") from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            if 400 <= exc.smtp_code < 500:
                raise TransientMailError(f"{exc.smtp_code} {_said(exc.smtp_error)}") from exc
            raise PermanentMailError(f"{exc.smtp_code} {_said(exc.smtp_error)}") from exc
        except (OSError, smtplib.SMTPServerDisconnected) as exc:  # timeouts are OSErrors
            self.close()
            where = f"{self.smtp['host']}:{self.smtp['port']}"
            raise MailServerUnavailable(
                f"no answer from {where}: {exc or type(exc).__name__}"
            ) from exc
        except smtplib.SMTPException as exc:
            self.close()
            raise TransientMailError(str(exc) or type(exc).__name__) from exc
        if refused:  # only with several recipients; a digest has one
            raise PermanentMailError(f"some recipients refused: {refused}")


def _said(reply: bytes | str) -> str:
    """A server's reply text as a person reads it: decoded, not Python's ``b'...'``."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split())
