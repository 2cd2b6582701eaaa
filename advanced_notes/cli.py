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
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from . import migrate


def _database_url() -> str:
    return current_app.extensions["advanced_notes"].db.url


@click.group("db", help="Schema migrations (Alembic).")
def db_group() -> None:
    pass


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
    migrate.upgrade(_database_url(), revision)


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (`base` removes every table)."""
    migrate.downgrade(_database_url(), revision)


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Show the database's current revision."""
    from alembic import command

    command.current(migrate.alembic_config(_database_url()), verbose=True)


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate/--empty", default=True, help="Diff the models against the database.")
@with_appcontext
def db_revision(message: str, autogenerate: bool) -> None:
    """Create a new revision file in migrations/versions (review it before committing)."""
    from alembic import command

    command.revision(migrate.alembic_config(_database_url()), message=message, autogenerate=autogenerate)


@click.command("token")
@click.option("--sub", "subject", default="dev-user", show_default=True, help="Owner id (the token's sub).")
@click.option("--expires-in", default=3600, show_default=True, type=click.IntRange(1, 30 * 86400),
              help="Lifetime in seconds.")
@with_appcontext
def token_command(subject: str, expires_in: int) -> None:
    """Mint an HS256 bearer token with AUTH_JWT_SECRET (for local use and scripts)."""
    from .auth import mint_token

    click.echo(mint_token(current_app.extensions["advanced_notes"].settings, subject, expires_in))


@click.command("sweep")
@click.option("--apply", is_flag=True, help="Make changes (default: dry run, report only).")
@click.option("--delete", "delete_orphans", is_flag=True,
              help="With --apply: also delete objects that no clip or recorded deletion knows.")
@click.option("--min-orphan-age", default=3600, show_default=True, type=click.IntRange(0),
              help="Seconds an unknown object must have existed before it counts as an orphan.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 1000),
              help="Rows per transaction and per query.")
@with_appcontext
def sweep_command(apply: bool, delete_orphans: bool, min_orphan_age: int, batch_size: int) -> None:
    """Expire stale uploads, finish recorded deletions, reconcile the bucket with the database.

    Safe to run from cron on several machines at once. Exits 0 after a complete run
    (findings are in the report), 1 when the store or database could not be reached.
    """
    import datetime as dt

    from sqlalchemy.exc import SQLAlchemyError
    from tqdm import tqdm

    from .errors import ApiError
    from .services.sweeper import Sweeper

    if delete_orphans and not apply:
        raise click.UsageError("--delete needs --apply")
    services = current_app.extensions["advanced_notes"]
    sweeper = Sweeper(services.db, services.storage, services.settings, batch_size=batch_size)
    # disable=None: the progress bar shows on a terminal and stays out of cron mail.
    with tqdm(unit=" objects", desc="reconcile", file=sys.stderr, disable=None) as bar:
        try:
            report = sweeper.run(apply=apply, delete_orphans=delete_orphans,
                                 min_orphan_age=dt.timedelta(seconds=min_orphan_age), progress=bar.update)
        except ApiError as exc:
            raise click.ClickException(exc.message) from exc
        except SQLAlchemyError as exc:
            raise click.ClickException(f"the database is unavailable: {exc.__class__.__name__}") from exc
    for line in report.summary():
        click.echo(line)


def register_app_commands(app: Flask) -> None:
    """Add the app commands to ``flask --app wsgi``."""
    app.cli.add_command(db_group)
    app.cli.add_command(token_command)
    app.cli.add_command(sweep_command)


def _create_app_for_cli() -> Flask:
    from . import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app_for_cli, add_default_commands=False,
             help="Advanced Notes audio clips.")
def main() -> None:
    pass


@main.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int, help="API port.")
@click.option("--s3-port", default=9000, show_default=True, type=int, help="S3 emulator port.")
@click.option("--sub", "subject", default="dev-user", show_default=True, help="Owner of the printed token.")
def dev_command(host: str, port: int, s3_port: int, subject: str) -> None:
    """Run the API on the embedded default: SQLite + moto's S3 server on loopback."""
    from .devserver import EmbeddedOptions, run_embedded

    run_embedded(EmbeddedOptions(host=host, port=port, s3_port=s3_port, subject=subject))


def _embedded_client_defaults() -> dict[str, str]:
    from .devserver import CLIENT_FILE

    path = Path("instance") / CLIENT_FILE
    return json.loads(path.read_text()) if path.exists() else {}


@main.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--note-id", default=None, help="Attach the clip to this note.")
@click.option("--mime-type", default=None, help="Override the type guessed from the extension.")
@click.option("--api", envvar="ADVANCED_NOTES_API", default=None, help="API base URL [env ADVANCED_NOTES_API].")
@click.option("--token", envvar="ADVANCED_NOTES_TOKEN", default=None, help="Bearer token [env ADVANCED_NOTES_TOKEN].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def upload_command(file: str, note_id: str | None, mime_type: str | None, api: str | None,
                   token: str | None, quiet: bool) -> None:
    """Upload FILE: create an upload session, PUT to the bucket, complete; print clip and playback URL.

    Without --api/--token it uses the running `advanced-notes dev` server's.
    """
    from .client import ApiClientError, AudioClipsClient

    embedded = _embedded_client_defaults()
    api = api or embedded.get("api") or "http://127.0.0.1:8000"
    token = token or embedded.get("token")
    if not token:
        raise click.UsageError("no token: pass --token or set ADVANCED_NOTES_TOKEN")
    from tqdm import tqdm

    client = AudioClipsClient(api, token)
    with tqdm(total=os.path.getsize(file), unit="B", unit_scale=True, unit_divisor=1024,
              desc="PUT", file=sys.stderr, disable=quiet) as bar:
        try:
            result: dict[str, Any] = client.upload_file(file, note_id=note_id, mime_type=mime_type,
                                                        on_progress=bar.update)
        except (ApiClientError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result["clip"], indent=2))
    click.echo(f"\nplayback URL (expires {result['playback']['expires_at']}):\n{result['playback']['url']}")


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(sys.argv[0]))
