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
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import tempfile
import time
from email import policy
from email.message import Message
from email.utils import getaddresses, parseaddr
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

from .config import Settings

SMTP_TIMEOUT = 30
#: Line ends as SMTP wants them, for messages flattened before :meth:`Mailer.send`.
SMTP_POLICY = policy.compat32.clone(linesep="\r\n", max_line_length=998)


class PermanentMailError(Exception):
    """The server refused the message for good (e.g. 5xx): retrying will not help."""


class TransientMailError(Exception):
    """A failure worth retrying later (connection refused, 4xx)."""


class MailServerUnavailable(TransientMailError):
    """No answer from the server (refused, reset, timed out) or an unwritable outbox."""


def send_message(settings: Settings, message: Message) -> None:
    """Deliver one message through the configured backend (one connection per call)."""
    with open_mailer(settings) as mailer:
        mailer.send(message)


def open_mailer(settings: Settings) -> Mailer:
    """A :class:`Mailer` for the configured backend (SMTP if ``smtp_url`` is set, else files)."""
    return Mailer(settings.outbox_dir, settings.smtp_url)


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
    # Not "*.eml" until complete: a reader globbing the outbox never sees half a message.
    fd, tmp = tempfile.mkstemp(dir=outbox, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes() if raw is None else raw)
            handle.flush()
            os.fsync(handle.fileno())  # the name must never point at a half-written file
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
            text = "; ".join(f"{rcpt}: {c} {m!r}" for rcpt, (c, m) in exc.recipients.items())
            if all(400 <= c < 500 for c in codes):
                raise TransientMailError(f"recipient deferred: {text}") from exc
            raise PermanentMailError(f"recipient refused: {text}") from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            if 400 <= exc.smtp_code < 500:
                raise TransientMailError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise PermanentMailError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
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


def send_smtp(url: str, message: Message) -> None:
    """Send one message over a fresh connection to ``smtp://[user:pass@]host[:port][?starttls=1]``
    or ``smtps://...`` (implicit TLS)."""
    with Mailer(Path("."), url) as mailer:
        mailer.send(message)
