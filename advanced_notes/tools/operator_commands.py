"""The operator's commands: schema migrations, tokens, the sweep, the bucket, the dev stack.

``db upgrade|downgrade|current|revision``, ``token``, ``sweep``, ``storage check|cors`` and
``dev``; the outbox and events commands are in :mod:`advanced_notes.tools.events`, the
processing ones in :mod:`advanced_notes.tools.processing`. Each builds only the settings it
uses (:func:`~advanced_notes.tools.context.with_stack`): ``token`` alone needs a token key.
"""

from __future__ import annotations

import json
import sys

import click

from advanced_notes.api.context import current_services
from advanced_notes.tools.context import UserError, with_stack


def _database_url() -> str:
    return current_services().db.url


@click.group("db", help="Schema migrations (Alembic).")
def db_group() -> None:
    pass


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_stack()
def db_upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
    from advanced_notes.adapters import (
        migrate,  # alembic is imported only when a db command runs
    )

    migrate.upgrade(_database_url(), revision)


@db_group.command("downgrade")
@click.argument("revision")
@with_stack()
def db_downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (`base` removes every table)."""
    from advanced_notes.adapters import (
        migrate,  # alembic is imported only when a db command runs
    )

    migrate.downgrade(_database_url(), revision)


@db_group.command("current")
@with_stack()
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
@with_stack()
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
    "--expires-in",
    default=3600,
    show_default=True,
    type=click.IntRange(1),
    help="Lifetime in seconds, at most AUTH_MAX_TOKEN_LIFETIME_SECONDS (86400 unless set).",
)
@with_stack(tokens=True)
def token_command(subject: str, expires_in: int) -> None:
    """Mint an HS256 bearer token with AUTH_JWT_SECRET (for local use and scripts).

    Refuses (exit 2) a lifetime the API would refuse: longer than the stack's
    AUTH_MAX_TOKEN_LIFETIME_SECONDS.
    """
    from advanced_notes.api.auth import mint_token

    settings = current_services().settings
    longest = settings.auth_max_token_lifetime_seconds
    if expires_in > longest:
        # Refused rather than capped: a script asking for a week gets a day it did not ask for.
        raise UserError(
            f"--expires-in {expires_in} is longer than the API accepts: at most {longest} s "
            "(AUTH_MAX_TOKEN_LIFETIME_SECONDS); mint a new token when this one expires"
        )
    click.echo(mint_token(settings, subject, expires_in))


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
@with_stack()
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
@with_stack()
def storage_check() -> None:
    """Try the upload path against the configured bucket; report what is wrong and the fix.

    Exits 1 when a check fails.
    """
    from advanced_notes.tools.doctor import StorageDoctor
    from advanced_notes.tools.doctor_report import FAIL, render

    services = current_services()
    failed = False
    for finding in StorageDoctor(services.storage, services.settings).run():
        failed |= finding.level == FAIL
        for line in render(finding):
            click.echo(line)
    if failed:
        raise SystemExit(1)


@storage_group.command("cors")
@click.option("--origin", "origins", multiple=True, help="Browser origin (default: CORS_ORIGINS).")
@click.option("--apply", is_flag=True, help="Write the rules to the bucket (default: print them).")
@with_stack()
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


@click.command("dev")
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


#: The commands of this module, for the ``advanced-notes`` group and ``flask --app wsgi``.
COMMANDS = (db_group, token_command, sweep_command, storage_group)
