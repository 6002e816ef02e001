"""The ``paperfeed`` command: a few lines per command over the library."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from . import store
from .config import Settings, load_settings
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
            self._db = store.open_db(self.settings.db_path)
        return self._db


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    ctx.obj = Context(load_settings(data_dir))


@cli.command()
@pass_context
def migrate(ctx: Context) -> None:
    """Create or upgrade the database schema."""
    ctx.settings.ensure_dirs()
    db = store.connect(ctx.settings.db_path)
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
                f"{rec.file_name}: {rec.papers} papers, {rec.new_papers} new, "
                f"{rec.repeats} repeats{extra}"
            )


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
    default="tfidf",
    show_default=True,
    help="Text representation for the content model.",
)
@click.option("--no-baselines", is_flag=True, help="Skip the two baselines.")
@pass_context
def evaluate(
    ctx: Context,
    task_dir: Path,
    as_json: bool,
    rankings: Path | None,
    plot: Path | None,
    text: str,
    no_baselines: bool,
) -> None:
    """Run the production ranking on a benchmark task folder and print its metrics."""
    from .evaluate import evaluate_task, format_report

    if plot is None:
        plot = ctx.settings.data_dir / "reports" / f"{task_dir.name}.png"
    plot.parent.mkdir(parents=True, exist_ok=True)
    result = evaluate_task(
        task_dir,
        text=text,
        rankings_path=rankings,
        plot_path=plot,
        baselines=not no_baselines,
        progress=not as_json,
    )
    click.echo(json.dumps(result, indent=2) if as_json else format_report(result))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def refit(ctx: Context, as_json: bool) -> None:
    """Fit the models on every paper and rating, and publish them for the web and digests."""
    from .pipeline import refit as refit_models

    report = refit_models(ctx.db, ctx.settings, progress=not as_json)
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(
            f"model {report['version']}: {report['papers']} papers, {report['people']} people, "
            f"{report['ratings']} ratings, fitted in {report['seconds']} s"
        )


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
    for reason in report.failed.values():
        click.echo(f"failed: {reason}", err=True)


@cli.command()
@pass_context
def scheduler(ctx: Context) -> None:
    """Run the job scheduler in the foreground (inbox, refits, digests)."""
    import logging

    from .scheduler import build_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    store.migrate(ctx.db)  # before the first job runs
    sched = build_scheduler(ctx.settings)
    click.echo(f"scheduler running; inbox: {ctx.settings.inbox_dir}")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        sched.start()


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
    """Serve the web app and run the scheduler beside it, in its own process."""
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
        ]
    )
    click.echo(f"paperfeed on http://{host}:{port}/ (scheduler pid {child.pid})")
    try:
        app.run(host=host, port=port)
    finally:
        child.terminate()
        child.wait(timeout=10)


def main() -> None:
    cli(prog_name="paperfeed")


if __name__ == "__main__":
    main()
