"""Command line.

- ``flask --app wsgi db upgrade|downgrade|current|revision`` and ``flask --app wsgi token``
  (app commands, also under ``advanced-notes``).
- ``advanced-notes dev``: the embedded default (SQLite + moto's S3 server + the API).
- ``advanced-notes upload FILE``: the three-step upload against a running server.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from advanced_notes.api.context import current_services

if TYPE_CHECKING:
    from advanced_notes.client import AudioClipsClient

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """A mistake the user can fix (configuration, a taken port, a bad argument): one line, exit 2.

    click prints ``Error: <message>`` without a traceback; 2 is click's own status for
    usage errors.
    """

    exit_code = 2


def _database_url() -> str:
    return current_services().db.url


@click.group("db", help="Schema migrations (Alembic).")
def db_group() -> None:
    pass


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
    from advanced_notes.adapters import (
        migrate,  # alembic is imported only when a db command runs
    )

    migrate.upgrade(_database_url(), revision)


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (`base` removes every table)."""
    from advanced_notes.adapters import (
        migrate,  # alembic is imported only when a db command runs
    )

    migrate.downgrade(_database_url(), revision)


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Show the database's current revision."""
    from alembic import command

    from advanced_notes.adapters import (
        migrate,  # alembic is imported only when a db command runs
    )

    command.current(migrate.alembic_config(_database_url()), verbose=True)


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate/--empty", default=True, help="Diff the models against the database.")
@with_appcontext
def db_revision(message: str, autogenerate: bool) -> None:
    """Create a new revision file in migrations/versions (review it before committing)."""
    from alembic import command

    from advanced_notes.adapters import (
        migrate,  # alembic is imported only when a db command runs
    )

    command.revision(migrate.alembic_config(_database_url()), message=message, autogenerate=autogenerate)


@click.command("token")
@click.option("--sub", "subject", default="dev-user", show_default=True, help="Owner id (the token's sub).")
@click.option(
    "--expires-in", default=3600, show_default=True, type=click.IntRange(1, 30 * 86400), help="Lifetime in seconds."
)
@with_appcontext
def token_command(subject: str, expires_in: int) -> None:
    """Mint an HS256 bearer token with AUTH_JWT_SECRET (for local use and scripts)."""
    from advanced_notes.api.auth import mint_token

    click.echo(mint_token(current_services().settings, subject, expires_in))


@click.command("sweep")
@click.option("--apply", is_flag=True, help="Make changes (default: dry run, report only).")
@click.option(
    "--reconcile",
    is_flag=True,
    help="Also compare the whole folder with every row (orphan, late, missing objects): nightly.",
)
@click.option(
    "--inventory",
    "inventory_manifest",
    default=None,
    metavar="KEY",
    help="With --reconcile: read this S3 Inventory manifest.json (a key in the bucket) instead of listing.",
)
@click.option(
    "--listing-threshold",
    default=None,
    type=click.IntRange(0),
    help="Pending clips above which the run lists the folder instead of asking the store per clip "
    "(default: LISTING_THRESHOLD of advanced_notes/services/sweeper.py).",
)
@click.option(
    "--delete",
    "delete_orphans",
    is_flag=True,
    help="With --apply --reconcile: also delete objects that no clip or recorded deletion knows.",
)
@click.option(
    "--min-orphan-age",
    default=3600,
    show_default=True,
    type=click.IntRange(0),
    help="Seconds an unknown object (or multipart upload) must have existed before it counts as an orphan.",
)
@click.option(
    "--batch-size",
    default=500,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Rows per transaction and per query.",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the results as Prometheus metrics to this file (node_exporter textfile collector).",
)
@with_appcontext
def sweep_command(
    apply: bool,
    reconcile: bool,
    inventory_manifest: str | None,
    listing_threshold: int | None,
    delete_orphans: bool,
    min_orphan_age: int,
    batch_size: int,
    metrics_file: str | None,
) -> None:
    """Finish uploads nobody completed, expire stale ones, finish deletions (costs what is pending);
    with --reconcile, also compare bucket and database both ways.

    Safe to run from cron on several machines at once. Exits 0 after a complete run
    (findings are in the report), 1 when the store or database could not be reached.
    """
    import datetime as dt

    from sqlalchemy.exc import SQLAlchemyError
    from tqdm import tqdm

    from advanced_notes.domain.errors import ApiError
    from advanced_notes.services.sweeper import Sweeper

    if delete_orphans and not apply:
        raise click.UsageError("--delete needs --apply")
    if (delete_orphans or inventory_manifest) and not reconcile:
        raise click.UsageError("--delete and --inventory need --reconcile")
    services = current_services()
    sweeper = Sweeper(services.db, services.storage, services.settings, batch_size=batch_size)
    if listing_threshold is not None:
        sweeper.listing_threshold = listing_threshold
    # disable=None: the progress bar shows on a terminal and stays out of cron mail.
    with tqdm(unit=" items", desc="sweep", file=sys.stderr, disable=None) as bar:
        from advanced_notes.adapters.inventory import InventoryError, inventory_objects

        try:
            inventory = None
            if inventory_manifest:
                inventory = inventory_objects(services.storage, inventory_manifest, sweeper.folder)
            report = sweeper.run(
                apply=apply,
                reconcile=reconcile,
                delete_orphans=delete_orphans,
                min_orphan_age=dt.timedelta(seconds=min_orphan_age),
                progress=bar.update,
                inventory=inventory,
            )
        except InventoryError as exc:
            raise click.ClickException(f"{inventory_manifest}: {exc}") from exc
        except ApiError as exc:
            raise click.ClickException(exc.message) from exc
        except SQLAlchemyError as exc:
            raise click.ClickException(f"the database is unavailable: {exc.__class__.__name__}") from exc
    for line in report.summary():
        click.echo(line)
    if apply and services.settings.webhook_urls and services.settings.webhook_secret:
        # The sweeper's own transitions (and any backlog) go out now, not at the next deliverer run.
        from advanced_notes.services.webhooks import WebhookDispatcher

        sent = WebhookDispatcher(services.db, services.settings).deliver_due()
        click.echo(f"webhooks delivered: {sent.delivered}, failed: {sent.failed}, given up: {sent.given_up}")
    if metrics_file:
        from advanced_notes.services.sweep_metrics import write_report_metrics

        write_report_metrics(report, metrics_file)


@click.group("storage", help="Check and set up the bucket.")
def storage_group() -> None:
    pass


@storage_group.command("check")
@with_appcontext
def storage_check() -> None:
    """Try the upload path against the configured bucket; report what is wrong and the fix.

    Exits 1 when a check fails.
    """
    from advanced_notes.tools.doctor import FAIL, WARN, StorageDoctor

    services = current_services()
    failed = False
    for finding in StorageDoctor(services.storage, services.settings).run():
        failed |= finding.level == FAIL
        click.echo(f"{finding.level.upper():<5} {finding.check}: {finding.detail}")
        if finding.fix:
            click.echo(f"      {'fix' if finding.level in (FAIL, WARN) else 'note'}: {finding.fix}")
    if failed:
        raise SystemExit(1)


@storage_group.command("cors")
@click.option("--origin", "origins", multiple=True, help="Browser origin (default: CORS_ORIGINS).")
@click.option("--apply", is_flag=True, help="Write the rules to the bucket (default: print them).")
@with_appcontext
def storage_cors(origins: tuple[str, ...], apply: bool) -> None:
    """Print, or with --apply write, the minimal bucket CORS rules for browser uploads."""
    from advanced_notes.domain.bucket_cors import required_cors_rules

    services = current_services()
    origins = origins or services.settings.cors_origins
    if not origins:
        raise click.UsageError("no origins: pass --origin or set CORS_ORIGINS")
    rules = required_cors_rules(origins)
    click.echo(json.dumps({"CORSRules": rules}, indent=2))
    if apply:
        services.storage.put_cors_rules(rules)
        click.echo(f"applied to bucket {services.storage.bucket}")


def register_app_commands(app: Flask) -> None:
    """Add the app commands to ``flask --app wsgi``."""
    app.cli.add_command(db_group)
    app.cli.add_command(token_command)
    app.cli.add_command(sweep_command)
    app.cli.add_command(storage_group)
    from advanced_notes.tools import events, processing

    events.register(app.cli)
    processing.register(app.cli)


def create_cli_app() -> Flask:
    """The app with its commands, as ``flask --app wsgi`` and ``advanced-notes`` see it.

    When the environment names no stack (no DATABASE_URL, S3_ENDPOINT_URL, S3_BUCKET,
    APP_ENV, ...) and an ``advanced-notes dev`` runs from this folder, the app gets that
    server's settings, so ``storage check``, ``sweep``, ``db`` and ``token`` act on the
    running dev stack (:mod:`advanced_notes.tools.discovery`).

    Raises:
        UserError: bad settings (the ConfigError's message, exit status 2).
    """
    from advanced_notes.app import create_app
    from advanced_notes.settings import ConfigError
    from advanced_notes.tools.discovery import DiscoveryError, stack_settings

    try:
        overrides = stack_settings(os.environ)
    except DiscoveryError as exc:
        click.echo(f"warning: {exc}", err=True)
        overrides = None
    try:
        app = create_app(overrides)
    except ConfigError as exc:
        # The message names every bad variable; a traceback would only bury it.
        raise UserError(str(exc)) from None
    register_app_commands(app)
    return app


@click.group(cls=FlaskGroup, create_app=create_cli_app, add_default_commands=False, help="Advanced Notes audio clips.")
def main() -> None:
    pass


@main.command("dev", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int, help="API port.")
@click.option("--s3-port", default=9000, show_default=True, type=int, help="S3 emulator port.")
@click.option("--sub", "subject", default="dev-user", show_default=True, help="Owner of the printed token.")
@click.option("--worker/--no-worker", default=True, show_default=True, help="Run a processing worker beside the API.")
def dev_command(host: str, port: int, s3_port: int, subject: str, worker: bool) -> None:
    """Run the API on the embedded default: SQLite + moto's S3 server on loopback, and a
    Celery worker (broker: a SQLite file in instance/) that processes the ready clips."""
    from advanced_notes.tools.devserver import DevStackError, EmbeddedOptions, run_embedded

    try:
        run_embedded(EmbeddedOptions(host=host, port=port, s3_port=s3_port, subject=subject, worker=worker))
    except DevStackError as exc:
        raise UserError(str(exc)) from None


def _client(api: str | None, token: str | None) -> AudioClipsClient:
    from advanced_notes.client import AudioClipsClient
    from advanced_notes.tools.discovery import DiscoveryError, live_stack

    if not (api and token):  # the running dev server's, unless both are given
        try:
            stack = live_stack()
        except DiscoveryError as exc:
            raise UserError(str(exc)) from None
        if stack is not None:
            api, token = api or stack.api, token or stack.token
    if not token:
        raise UserError("no token: pass --token or set ADVANCED_NOTES_TOKEN (or start `advanced-notes dev` here)")
    return AudioClipsClient(api or "http://127.0.0.1:8000", token)


def _client_options(command: F) -> F:
    command = click.option(
        "--token", envvar="ADVANCED_NOTES_TOKEN", default=None, help="Bearer token [env ADVANCED_NOTES_TOKEN]."
    )(command)
    return click.option(
        "--api", envvar="ADVANCED_NOTES_API", default=None, help="API base URL [env ADVANCED_NOTES_API]."
    )(command)


def _field_messages(details: Any) -> str:
    """``{"note_id": ["Shorter than minimum length 1."]}`` -> ``note_id: Shorter than minimum length 1.``"""
    if not isinstance(details, dict):
        return ""
    parts = []
    for name, messages in details.items():
        if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
            parts.append(f"{name}: {' '.join(messages)}")
        elif isinstance(messages, dict):
            parts.extend(f"{name}.{inner}" for inner in _field_messages(messages).split("; ") if inner)
        elif isinstance(messages, str | int):
            parts.append(f"{name}: {messages}")
    return "; ".join(parts)


def _api_errors(fn: F) -> F:
    """Turn client errors into one line: API answers exit 1, a server out of reach exits 2."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import requests

        from advanced_notes.client import ApiClientError

        try:
            return fn(*args, **kwargs)
        except ApiClientError as exc:
            fields = _field_messages(exc.details) if exc.code == "validation_error" else ""
            raise click.ClickException(f"{exc} ({fields})" if fields else str(exc)) from exc
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        except requests.ConnectionError as exc:
            url = exc.request.url.split("?", 1)[0] if exc.request is not None and exc.request.url else "the API"
            raise UserError(
                f"cannot connect to {url}: is the server running? (start `advanced-notes dev`, or pass --api)"
            ) from None
        except requests.Timeout:
            raise UserError("the server did not answer in time") from None

    return cast(F, wrapper)


def _print_playback(playback: dict[str, Any]) -> None:
    click.echo(f"\nplayback URL (expires {playback['expires_at']}):\n{playback['url']}")


@main.command("upload", with_appcontext=False)
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--note-id", default=None, help="Attach the clip to this note.")
@click.option("--mime-type", default=None, help="Override the type detected from the file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--multipart-threshold",
    default=16 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1),
    help="Bytes from which FILE is uploaded in parts (resumable).",
)
@click.option("--parallel", default=4, show_default=True, type=click.IntRange(1, 32), help="Parts sent at once.")
@click.option("--resume", "resume_clip_id", default=None, help="Finish the interrupted multipart upload of this clip.")
@_client_options
@_api_errors
def upload_command(
    file: str,
    note_id: str | None,
    mime_type: str | None,
    api: str | None,
    token: str | None,
    quiet: bool,
    multipart_threshold: int,
    parallel: int,
    resume_clip_id: str | None,
) -> None:
    """Upload FILE: create an upload session, PUT to the bucket, complete; print clip and playback URL.

    Declares the file's type, size, duration and SHA-256; retries transient failures and
    re-signs an expired PUT URL. From --multipart-threshold bytes on, FILE goes up in
    parts, --parallel at a time; if interrupted, run the same command with the printed
    --resume CLIP_ID to send only the parts the store lacks. Without --api/--token it
    uses the running `advanced-notes dev` server's.
    """
    from tqdm import tqdm

    client = _client(api, token)

    def announce(created: dict[str, Any]) -> None:
        if created.get("multipart"):
            session = created["multipart"]
            tqdm.write(
                f"clip {created['clip']['id']}: {session['part_count']} parts of {session['part_size']} bytes; "
                f"if interrupted, resume with: --resume {created['clip']['id']}",
                file=sys.stderr,
            )

    def resumed(stored: dict[str, Any]) -> None:
        tqdm.write(
            f"resuming: {len(stored['parts'])} of {stored['multipart']['part_count']} parts already stored",
            file=sys.stderr,
        )

    with tqdm(
        total=os.path.getsize(file),
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="PUT",
        file=sys.stderr,
        disable=quiet,
    ) as bar:
        if resume_clip_id:
            result = client.resume_file(
                resume_clip_id, file, parallel=parallel, on_progress=bar.update, on_resume=resumed
            )
        else:
            result = client.upload_file(
                file,
                note_id=note_id,
                mime_type=mime_type,
                on_progress=bar.update,
                multipart_threshold=multipart_threshold,
                parallel=parallel,
                on_created=announce,
            )
    click.echo(json.dumps(result["clip"], indent=2))
    _print_playback(result["playback"])


@main.command("play", with_appcontext=False)
@click.argument("clip_id")
@_client_options
@_api_errors
def play_command(clip_id: str, api: str | None, token: str | None) -> None:
    """Print a playback URL for CLIP_ID (a ready clip)."""
    _print_playback(_client(api, token).playback(clip_id))


@main.command("note-audio", with_appcontext=False)
@click.argument("note_id")
@_client_options
@_api_errors
def note_audio_command(note_id: str, api: str | None, token: str | None) -> None:
    """Print NOTE_ID's primary clip (most recent ready) and a playback URL."""
    result = _client(api, token).note_audio(note_id)
    click.echo(json.dumps(result["clip"], indent=2))
    _print_playback(result["playback"])


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(sys.argv[0]))
