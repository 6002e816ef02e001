"""The ``paperfeed`` command: a few lines per command over the library."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import sys
from pathlib import Path

import click

from . import store
from .config import ConfigError, Settings, load_settings
from .ingest import IngestError, ingest_paths


class Context:
    """What every command gets: the settings, and a migrated database on demand."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._db = None

    @property
    def db(self):
        if self._db is None:
            self.settings.ensure_dirs()
            self._db = store.open_db(self.settings.db_path, busy_timeout=self.settings.busy_timeout)
        return self._db


pass_context = click.make_pass_decorator(Context)

BUSY = "the database is busy (locked by another process); try again"


def counted(n: int, word: str, plural: str | None = None) -> str:
    """``1 paper``, ``2 papers``, ``0 papers``."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


class PaperfeedGroup(click.Group):
    """Commands whose database is locked by another process, or whose disk is full, end
    with one line saying so (exit 1) instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except sqlite3.OperationalError as exc:
            if store.is_busy(exc):
                raise click.ClickException(BUSY) from None
            if store.is_disk_full(exc):
                raise click.ClickException(_disk_full(ctx, exc)) from None
            raise
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise click.ClickException(_disk_full(ctx, exc)) from None
            raise


def _disk_full(ctx: click.Context, exc: BaseException) -> str:
    where = ctx.obj.settings.data_dir if isinstance(ctx.obj, Context) else "the data dir"
    return (
        f"the disk is full ({exc}); the command stopped and kept nothing half-written: "
        f"free some space under {where} and run it again"
    )


@click.group(cls=PaperfeedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the database, models, inbox and outbox "
    "[env PAPERFEED_DATA_DIR, default ./var].",
)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None) -> None:
    """paperfeed: a personal research-paper recommender."""
    try:
        settings = load_settings(data_dir)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    ctx.obj = Context(settings)


@cli.command()
@pass_context
def migrate(ctx: Context) -> None:
    """Create or upgrade the database schema."""
    ctx.settings.ensure_dirs()
    db = store.connect(ctx.settings.db_path, busy_timeout=ctx.settings.busy_timeout)
    applied = store.migrate(db)
    if applied:
        for name in applied:
            click.echo(f"applied {name}")
    else:
        click.echo("database is up to date")
    click.echo(f"database: {ctx.settings.db_path}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--date",
    "dump_date",
    default=None,
    metavar="YYYY-MM-DD",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day the dumps are for [default: today].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def ingest(ctx: Context, paths: tuple[Path, ...], dump_date, as_json: bool) -> None:
    """Ingest dump files (Daily Papers text, JSON Lines, arXiv Atom) or folders of them.

    Every file is parsed before anything is stored: if one is malformed, none is
    ingested and the command exits with status 1.
    """
    try:
        results = ingest_paths(
            ctx.db,
            paths,
            dump_date=dump_date.date() if dump_date else None,
            progress=not as_json,
        )
    except IngestError as exc:
        for error in exc.errors:
            click.echo(f"error: {error}", err=True)
        click.echo("nothing was ingested", err=True)
        sys.exit(1)
    for result in results:
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
        return
    if not results:
        click.echo("no dump files found")
    for result in results:
        rec = result.record
        if rec.already_ingested:
            click.echo(
                f"{rec.file_name}: already ingested as dump {rec.dump_id} "
                f"({rec.dump_date}); nothing new"
            )
        else:
            extra = (
                f", {result.skipped_lines} boilerplate lines skipped"
                if result.skipped_lines
                else ""
            )
            click.echo(
                f"{rec.file_name}: {counted(rec.papers, 'paper')}, {rec.new_papers} new, "
                f"{counted(rec.repeats, 'repeat')}{extra}"
            )


@cli.command()
@click.argument("source", type=click.Choice(["hf-daily", "arxiv"]))
@click.option(
    "--date",
    "day",
    default=None,
    metavar="YYYY-MM-DD",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day to fetch [default: today for hf-daily, yesterday (UTC) for arxiv].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def fetch(ctx: Context, source: str, day, as_json: bool) -> None:
    """Fetch one day of papers from SOURCE (hf-daily, arxiv) and store it as a dump.

    Fetching a day again adds nothing (it refreshes upvotes); a day that cannot be
    fetched stores nothing, is recorded for the scheduler to retry, and exits 1.
    """
    from datetime import UTC, datetime, timedelta

    from .sources import FetchError, fetch_source_day

    cfg = ctx.settings.sources
    if day is None:
        today = datetime.now(UTC).date()
        chosen = today if source == "hf-daily" else today - timedelta(days=1)
    else:
        chosen = day.date()
    try:
        result = fetch_source_day(ctx.db, source, chosen, cfg)
    except FetchError as exc:
        click.echo(f"error: {source} {chosen}: {exc}", err=True)
        click.echo("nothing was stored; `paperfeed scheduler` retries the day later", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif result.papers == 0:
        click.echo(f"{source} {result.day}: no papers that day")
    elif result.already_fetched:
        click.echo(
            f"{source} {result.day}: already fetched as dump {result.dump_id}; nothing new"
            + (
                f" ({result.upvotes_updated} upvote counts refreshed)"
                if result.upvotes_updated
                else ""
            )
        )
    else:
        click.echo(
            f"{source} {result.day}: {counted(result.papers, 'paper')}, {result.new_papers} new, "
            f"{result.papers - result.new_papers} already known (dump {result.dump_id})"
            + (
                f", {counted(result.skipped, 'item')} without a title skipped"
                if result.skipped
                else ""
            )
        )


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many titles.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def enrich(ctx: Context, limit: int | None, as_json: bool) -> None:
    """Find the arXiv ids, authors and links of papers that came without them (text dumps).

    Titles are looked up in the arXiv API in batches; each answer is cached, so a
    title is asked once. Without network it says so and exits 1, keeping what it found.
    """
    from .sources import enrich as enrich_papers

    cfg = ctx.settings.sources
    report = enrich_papers(ctx.db, cfg, limit=limit, progress=not as_json)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(
            f"{counted(report.looked_up, 'title')} looked up, {report.found} found on arXiv, "
            f"{counted(report.updated, 'paper')} updated; without an arXiv id: "
            f"{report.left} not looked up yet, {report.not_found} not found by exact title"
        )
    if report.error:
        click.echo(f"error: arXiv could not be reached: {report.error}", err=True)
        click.echo("what was found is kept; run `paperfeed enrich` again later", err=True)
        sys.exit(1)


@cli.command()
@click.argument("task_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option(
    "--rankings",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write each user's ranking as JSON Lines to this file.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save a PNG of recall@K against the published references "
    "[default: <data dir>/reports/<task>.png].",
)
@click.option(
    "--text",
    type=click.Choice(["tfidf", "embeddings"]),
    default=None,
    help="Text representation for the content model [default: what a refit uses, "
    "PAPERFEED_TEXT_MODEL or embeddings].",
)
@click.option("--no-baselines", is_flag=True, help="Skip the two baselines.")
@click.option(
    "--no-tune", is_flag=True, help="Shipped blend weights only: no fit-time self-tuning."
)
@pass_context
def evaluate(
    ctx: Context,
    task_dir: Path,
    as_json: bool,
    rankings: Path | None,
    plot: Path | None,
    text: str | None,
    no_baselines: bool,
    no_tune: bool,
) -> None:
    """Run the production ranking on a benchmark task folder and print its metrics.

    Fits exactly as a refit does (self-tuning included) on the task's train.csv alone.
    """
    from .evaluate import evaluate_task, format_report

    if plot is None:
        plot = ctx.settings.data_dir / "reports" / f"{task_dir.name}.png"
    plot.parent.mkdir(parents=True, exist_ok=True)
    result = evaluate_task(
        task_dir,
        text=text or ctx.settings.text_kind,
        rankings_path=rankings,
        plot_path=plot,
        baselines=not no_baselines,
        tune=not no_tune,
        progress=not as_json,
    )
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


def _write_models(write, ctx: Context, *, as_json: bool, wait: bool) -> dict | None:
    """Run ``write`` (a refit or a publish) as the models' one writer; None, after saying
    so, when another writer holds the lock and ``wait`` is off."""
    from .bundles import WriterBusy

    try:
        return write(ctx.db, ctx.settings, progress=not as_json, wait=wait)
    except WriterBusy as exc:
        if as_json:
            click.echo(json.dumps({"version": None, "skipped": str(exc)}))
        else:
            click.echo(f"{exc}; not starting a second one (use --wait to queue)")
        return None


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--wait", is_flag=True, help="If another refit is running, wait and then refit.")
@click.option(
    "--retune",
    is_flag=True,
    help="Learn the blend weights anew even if those of the last tuning may be reused.",
)
@pass_context
def refit(ctx: Context, as_json: bool, wait: bool, retune: bool) -> None:
    """Fit the models on every paper and rating, and publish them for the web and digests.

    The blend weights are learned on a held-out slice of the ratings, or reused from the
    last refit that learned them while that is at most 7 days old and at most 5% of the
    ratings changed since (--retune learns them anew). One refit runs at a time per data
    dir: without --wait, a refit that finds another running says so and exits 0 (the
    running one publishes).
    """
    from functools import partial

    from .refit import refit as refit_models

    write = partial(refit_models, retune=retune)
    report = _write_models(write, ctx, as_json=as_json, wait=wait)
    if report is None:
        return
    if as_json:
        click.echo(json.dumps(report))
    else:
        parts = ", ".join(f"{k} {v} s" for k, v in report["parts"].items())
        click.echo(
            f"model {report['version']}: {counted(report['papers'], 'paper')}, "
            f"{counted(report['people'], 'person', 'people')}, "
            f"{counted(report['ratings'], 'rating')}, "
            f"fitted and published in {report['seconds']} s ({parts})"
        )
        click.echo(describe_tuning(report["tuning"]))


def describe_tuning(tuning: dict) -> str:
    """One line on the blend weights a refit ranks with."""
    status = tuning.get("status")
    if status == "reused":
        return (
            f"blend weights: reused from {tuning['of']}'s tuning of {tuning['tuned_at']} "
            f"(up to {tuning['ratings_changed']} of its {tuning['tuned_on_ratings']} ratings "
            "changed since; --retune to learn them anew)"
        )
    if status == "tuned":
        why = tuning.get("retuned_because")
        return "blend weights: learned on a held-out slice of the ratings" + (
            f" ({why})" if why else ""
        )
    if status == "defaults":
        return "blend weights: the shipped ones (too few people to learn from)"
    return "blend weights: the shipped ones"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--wait", is_flag=True, help="If another refit is running, wait and then publish.")
@pass_context
def publish(ctx: Context, as_json: bool, wait: bool) -> None:
    """Publish the papers ingested since the last bundle with its fitted models (no refit).

    New papers get vectors from the fitted text model, bridged collaborative factors and
    their neighbourhoods; the scheduler does this after every ingest and refits nightly. A
    full refit runs instead when the current bundle cannot be reused (none, damaged,
    another text model, papers merged away) or the ratings changed by more than a fifth.
    """
    from .refit import publish as publish_models

    report = _write_models(publish_models, ctx, as_json=as_json, wait=wait)
    if report is None:
        return
    if as_json:
        click.echo(json.dumps(report))
        return
    parts = ", ".join(f"{k} {v} s" for k, v in report["parts"].items())
    if report.get("refit_because"):
        click.echo(f"refitted in full: {report['refit_because']}")
    if not report["published"]:
        click.echo(f"model {report['version']} already holds every paper; nothing to publish")
        return
    click.echo(
        f"model {report['version']}: {counted(report['papers'], 'paper')}"
        + (
            f" ({report['new_papers']} new, models of {report['fit_of']})"
            if not report.get("refit_because")
            else ""
        )
        + f", published in {report['seconds']} s ({parts})"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the merged pairs as JSON.")
@pass_context
def dedupe(ctx: Context, as_json: bool) -> None:
    """Merge near-duplicate papers already stored (an abbreviation in front, or titles 95 %
    alike) into the older one, moving ratings, impressions and digest items to it.

    Ingest merges new papers as they arrive, and every refit runs this first; this
    command is for a database filled before that. It waits for a running refit.
    """
    from .bundles import model_writer

    with model_writer(ctx.settings.models_dir, wait=True):
        merged = store.merge_near_duplicates(ctx.db)
    if as_json:
        click.echo(json.dumps(merged, indent=2))
        return
    for pair in merged:
        click.echo(f"merged #{pair['merged']} “{pair['merged_title']}”")
        click.echo(f"  into #{pair['kept']} “{pair['kept_title']}”")
    click.echo(f"{counted(len(merged), 'near-duplicate paper')} merged")


@cli.command()
@pass_context
def inbox(ctx: Context) -> None:
    """Ingest the dump files waiting in the inbox folder once, as the scheduler does."""
    from .jobs import ingest_inbox

    report = ingest_inbox(ctx.settings)
    click.echo(
        f"{len(report.ingested)} ingested ({report.new_papers} new papers), "
        f"{len(report.repeated)} already known, {len(report.failed)} failed"
    )
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for reason in report.failed.values():
        click.echo(f"failed: {reason}", err=True)


@cli.command()
@pass_context
def scheduler(ctx: Context) -> None:
    """Run the job scheduler in the foreground (inbox, refits, digests)."""
    import logging
    import signal
    import time

    from apscheduler.schedulers.background import BackgroundScheduler

    from .scheduler import SchedulerRunning, build_scheduler, scheduler_lock

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # The mail queue is looked at every 5 s: APScheduler's two lines a run would drown the
    # log. Jobs log their own counts; a job that raises is still logged (at ERROR).
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    # SIGTERM (what `paperfeed run`, systemd and PaaS routers send) and Ctrl-C only set a
    # flag: raising inside APScheduler's start-up could leave a lock held.
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: stopping.append(number))
    try:
        with scheduler_lock(ctx.settings):
            store.migrate(ctx.db)  # before the first job runs
            sched = build_scheduler(ctx.settings, scheduler_class=BackgroundScheduler)
            sched.start()
            click.echo(f"scheduler running (pid {os.getpid()}); inbox: {ctx.settings.inbox_dir}")
            while not stopping:
                time.sleep(0.2)
            click.echo(f"scheduler stopping ({signal.Signals(stopping[0]).name})", err=True)
            sched.shutdown(wait=False)
            _let_running_jobs_finish(STOP_GRACE_SECONDS)
    except SchedulerRunning as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo("scheduler stopped", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # job threads still running are abandoned: every job is crash-safe


#: How long a stopping scheduler lets a running job finish before it exits anyway.
STOP_GRACE_SECONDS = 10


def _let_running_jobs_finish(seconds: float) -> None:
    import threading
    import time

    deadline = time.monotonic() + seconds
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Reload on code changes, show tracebacks.")
@pass_context
def serve(ctx: Context, host: str, port: int, debug: bool) -> None:
    """Serve the web app for development (production: gunicorn, see the Procfile)."""
    from web import create_app

    create_app({"DATA_DIR": str(ctx.settings.data_dir)}).run(host=host, port=port, debug=debug)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@pass_context
def run(ctx: Context, host: str, port: int) -> None:
    """Serve the web app and run the scheduler beside it, in its own process.

    SIGTERM or SIGINT (Ctrl-C) stops both; the scheduler also gets SIGTERM from the
    kernel if this process dies without cleaning up (Linux ``PR_SET_PDEATHSIG``).
    """
    import signal
    import subprocess

    from web import create_app

    app = create_app({"DATA_DIR": str(ctx.settings.data_dir)})
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recommender.cli",
            "--data-dir",
            str(ctx.settings.data_dir),
            "scheduler",
        ],
        preexec_fn=_die_with_parent,
    )
    # Both run the finally below. SIGINT explicitly: a process started with SIGINT
    # ignored (a background job of a shell, `make test &`) would otherwise never see it.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: sys.exit(0))
    click.echo(f"paperfeed on http://{host}:{port}/ (scheduler pid {child.pid})")
    try:
        app.run(host=host, port=port)
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        click.echo(f"stopped (scheduler pid {child.pid} exited {child.returncode})")


def _die_with_parent() -> None:
    """In the scheduler child before exec: SIGTERM it when its parent dies (Linux only)."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@cli.command()
@click.option("--user", "email", default=None, metavar="EMAIL", help="Only this person.")
@click.option("--dry-run", is_flag=True, help="Show who is due and what they would get.")
@click.option(
    "--now",
    default=None,
    metavar="ISO-DATETIME",
    help="Pretend it is this time, e.g. 2025-03-10T07:05+01:00 (UTC without an offset).",
)
@click.option("--status", is_flag=True, help="Show the ledger: counts, failures, retries.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=0),
    help="With --status: list at most this many failed/pending rows (0: all).",
)
@pass_context
def digest(
    ctx: Context, email: str | None, dry_run: bool, now: str | None, status: bool, limit: int
) -> None:
    """Send the email digests that are due (as the scheduler does every few minutes)."""
    from datetime import UTC, datetime, timedelta

    from . import digest as digests

    if status:
        report = store.digest_status(ctx.db, limit=limit or None)
        counts = ", ".join(f"{n} {state}" for state, n in sorted(report["counts"].items()))
        click.echo(counts or "no digests yet")
        for row in report["problems"]:
            click.echo(
                f"{row['state']:8} {row['email']} {row['period']} attempts={row['attempts']} "
                f"next={row['next_attempt_at']} {row['last_error'] or ''}".rstrip()
            )
        shown, total = len(report["problems"]), report["problems_total"]
        if shown < total:
            click.echo(
                f"... {total - shown} more: listed {shown} of {total} failed, pending and "
                "sending rows (by state, newest first); --limit N lists more, --limit 0 all"
            )
        return
    try:
        moment = datetime.fromisoformat(now) if now else None
    except ValueError:
        raise click.BadParameter(f"not an ISO date and time: {now!r}", param_hint="--now") from None
    if moment is not None and not dry_run:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if aware > datetime.now(UTC) + timedelta(minutes=1):
            # each period's digest is sent once: sending a future day's now uses it up
            raise click.BadParameter(
                f"{now} is in the future: its digests would be sent now and not again on "
                "the day. Add --dry-run to see what they would hold.",
                param_hint="--now",
            )
    run = digests.send_due_digests(ctx.db, ctx.settings, now=moment, email=email, dry_run=dry_run)
    for preview in run.previews:
        what = preview["subject"] or "nothing above the bar: nothing would be sent"
        click.echo(f"{preview['email']} ({preview['period']}): {what}")
        if email and preview["text"]:
            click.echo(preview["text"])
    click.echo(f"{run.due} due (dry run: nothing sent)" if dry_run else run.summary())
    if run.stopped:
        click.echo(f"error: the run stopped early: {run.stopped}", err=True)
    if run.locked or run.stopped:
        sys.exit(1)


@cli.group()
def user() -> None:
    """Manage accounts: add one, list them."""


@user.command("add")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--confirmed", is_flag=True, help="Mark the address as confirmed (digests go out).")
@pass_context
def user_add(ctx: Context, email: str, password_stdin: bool, confirmed: bool) -> None:
    """Create an account for EMAIL; prompts for its password unless --password-stdin.

    The sign-up form's rules and path: without --confirmed the person is emailed a link
    to confirm the address (outbox or SMTP, as configured)."""
    from . import accounts
    from .config import ConfigError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        secret_key = ctx.settings.secret_key()
        user, sent = accounts.create_account(
            ctx.db, ctx.settings, secret_key, email, password, confirmed=confirmed
        )
    except (accounts.AccountError, ConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"added {user['email']} (user {user['id']})")
    if sent and not accounts.deliver_account_mails(ctx.db, ctx.settings, secret_key).sent:
        click.echo(
            "warning: the confirmation email could not be sent now; the scheduler retries it",
            err=True,
        )


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the accounts as JSON.")
@pass_context
def user_list(ctx: Context, as_json: bool) -> None:
    """Every account with its likes and dislikes."""
    users = store.list_users(ctx.db)
    if as_json:
        click.echo(json.dumps(users, indent=2))
        return
    if not users:
        click.echo("no accounts yet: add one with `paperfeed user add EMAIL`")
    for row in users:
        state = "confirmed" if row["email_confirmed_at"] else "unconfirmed"
        click.echo(
            f"{row['id']:>4}  {row['email']}  {state}  {row['likes']} likes, "
            f"{row['dislikes']} dislikes  since {row['created_at'][:10]}"
        )


@cli.group()
def ratings() -> None:
    """Export and import a person's ratings (the formats of the settings page)."""


def _user_or_exit(ctx: Context, email: str) -> dict:
    found = store.get_user_by_email(ctx.db, email)
    if found is None:
        click.echo(f"error: no account for {email}", err=True)
        sys.exit(1)
    return found


@ratings.command("export")
@click.argument("email")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "bibtex"]),
    default="csv",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file [default: standard output].",
)
@pass_context
def ratings_export(ctx: Context, email: str, fmt: str, output: Path | None) -> None:
    """Write EMAIL's ratings as CSV, JSON or BibTeX."""
    from .ratings_io import records_from_rows, write_ratings

    person = _user_or_exit(ctx, email)
    text = write_ratings(records_from_rows(store.ratings_for_export(ctx.db, person["id"])), fmt)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@ratings.command("import")
@click.argument("email")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "bibtex"]),
    default=None,
    help="[default: from the file name, else the content]",
)
@pass_context
def ratings_import(ctx: Context, email: str, file: Path, fmt: str | None) -> None:
    """Add the ratings in FILE to EMAIL's; a malformed file imports nothing (exit 1)."""
    from .ratings_io import RatingsFormatError, decode_ratings_file, guess_format, read_ratings

    person = _user_or_exit(ctx, email)
    try:
        text = decode_ratings_file(file.read_bytes(), source=str(file))
        records = read_ratings(text, fmt or guess_format(file.name, text), source=str(file))
    except RatingsFormatError as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo("nothing was imported", err=True)
        sys.exit(1)
    try:
        result = store.import_ratings(
            ctx.db, person["id"], [(r.external_id, r.title, r.value, r.interest) for r in records]
        )
    except store.InterestError as exc:  # an interest's name in the file; nothing was written
        click.echo(f"error: {exc}", err=True)
        click.echo("nothing was imported", err=True)
        sys.exit(1)
    click.echo(
        f"{result['imported']} imported, {result['unchanged']} unchanged, "
        f"{len(result['unmatched'])} not found"
    )
    for title in result["unmatched"]:
        click.echo(f"not found: {title}", err=True)


@ratings.command("library")
@click.argument("email")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["bibtex", "ris", "csv", "ids"]),
    default=None,
    help="[default: from the file name, else the content]",
)
@click.option("--json", "as_json", is_flag=True, help="Print what the import did as JSON.")
@pass_context
def ratings_library(ctx: Context, email: str, file: Path, fmt: str | None, as_json: bool) -> None:
    """Start EMAIL's profile from a library (BibTeX, RIS, CSV, or arXiv ids / DOIs):
    stored papers are liked, the others added as library papers; a malformed file imports
    nothing (exit 1)."""
    from . import library
    from .ratings_io import RatingsFormatError, decode_ratings_file

    person = _user_or_exit(ctx, email)
    try:
        text = decode_ratings_file(file.read_bytes(), source=str(file))
        fmt = fmt or library.guess_library_format(file.name, text)
        entries = library.read_library(text, fmt, source=str(file))
    except RatingsFormatError as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo("nothing was imported", err=True)
        sys.exit(1)
    done = library.import_library(ctx.db, person["id"], entries, cfg=ctx.settings.sources)
    click.echo(json.dumps(done.as_dict(), indent=2) if as_json else done.message())


def main(args: list[str] | None = None) -> None:
    cli(args=args, prog_name="paperfeed")


if __name__ == "__main__":
    main()
