"""``processing relay|status`` and ``worker check``: operating the processing stage (docs/processing.md)."""

from __future__ import annotations

import time

import click
from flask import current_app

from advanced_notes.adapters import processing_sql as sql
from advanced_notes.adapters.taskqueue import CeleryPublisher, broker_status, broker_url
from advanced_notes.api.context import current_services
from advanced_notes.domain.clock import utcnow
from advanced_notes.services.processing_relay import ProcessingRelay
from advanced_notes.settings import ConfigError
from advanced_notes.tools.context import with_stack


def _broker() -> str:
    try:
        return broker_url(current_services().settings, current_app.instance_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("processing", help="The processing stage: relay jobs to the workers, report their state.")
def processing_group() -> None:
    pass


@processing_group.command("relay")
@click.option("--once", is_flag=True, help="Publish the due jobs once and exit (default: every interval, forever).")
@click.option("--limit", default=100, show_default=True, help="Jobs claimed per round.")
@with_stack()
def relay_command(once: bool, limit: int) -> None:
    """Publish due processing jobs to the broker (the worker's beat does the same).

    Runs every PROCESSING_RELAY_INTERVAL_SECONDS until stopped; safe to run on several
    machines at once (rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL).
    """
    services = current_services()
    settings = services.settings
    if not settings.processing_enabled:
        click.echo("PROCESSING_ENABLED is off: nothing is published")
        return
    publisher = CeleryPublisher(_broker(), settings)
    relay = ProcessingRelay(services.db, publisher, settings)
    try:
        while True:
            result = relay.publish_due(limit)
            while result.published == limit and not result.failed:  # a backlog: drain it
                result = relay.publish_due(limit)
            if once:
                click.echo(f"published: {result.published}" + (" (broker unavailable)" if result.failed else ""))
                if result.failed:
                    raise SystemExit(1)
                return
            time.sleep(settings.processing_relay_interval_seconds)
    finally:
        publisher.close()


@processing_group.command("status")
@with_stack()
def status_command() -> None:
    """Clips by processing status, and jobs due now / not finished."""
    services = current_services()
    with services.db.read() as session:
        counts = sql.status_counts(session)
        due, unfinished = sql.count_due_jobs(session, now=utcnow())
    for status in ("queued", "running", "done", "failed"):
        click.echo(f"{status}: {counts.get(status, 0)}")
    click.echo(f"not processed (not ready): {counts.get(None, 0)}")
    click.echo(f"jobs due now: {due}")
    click.echo(f"jobs not finished: {unfinished}")


@click.group("worker", help="The processing worker (Celery).")
def worker_group() -> None:
    pass


@worker_group.command("check")
@click.option("--timeout", default=2.0, show_default=True, help="Seconds to wait for the broker and the workers.")
@with_stack()
def worker_check(timeout: float) -> None:
    """Is the broker reachable, and does a worker answer (Celery ``inspect ping``)? Exits 1 if not."""
    url = _broker()
    status = broker_status(url, current_services().settings, timeout)
    if status.broker_error is not None:
        click.echo(f"FAIL  broker: not reachable ({status.broker_error})")
        click.echo("      fix: start the broker (Redis) or correct PROCESSING_BROKER_URL")
        raise SystemExit(1)
    click.echo("OK    broker: reachable")
    if not status.pingable:
        _jobs_as_evidence()
        return
    if not status.workers:
        click.echo(f"FAIL  workers: none answered within {timeout} s")
        click.echo("      fix: celery -A advanced_notes.worker.celery_app worker (docs/processing.md)")
        raise SystemExit(1)
    click.echo(f"OK    workers: {', '.join(status.workers)}")


def _jobs_as_evidence() -> None:
    """On a broker no worker can answer a ping: whether jobs wait is the evidence. A job is
    due only while nothing has published it; with the worker's beat (``-B``) down, due jobs
    pile up. Exits 1 when jobs are due."""
    services = current_services()
    with services.db.read() as session:
        due, unfinished = sql.count_due_jobs(session, now=utcnow())
    click.echo("INFO  workers: this broker's transport has no broadcast, so no worker can answer a ping")
    if due:
        click.echo(f"FAIL  jobs: {due} due and not published: the worker (with its beat, -B) is not running")
        click.echo("      fix: celery -A advanced_notes.worker.celery_app worker -B (docs/processing.md)")
        raise SystemExit(1)
    click.echo(f"OK    jobs: none due; {unfinished} published and not finished yet")


#: The commands of this module, for the ``advanced-notes`` group and ``flask --app wsgi``.
COMMANDS = (processing_group, worker_group)
