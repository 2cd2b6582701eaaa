"""Commands that finish uploads without the client and tell others (docs/events.md).

- ``webhooks deliver``: send the outbound webhooks that are due (cron, or ``--loop``).
- ``webhooks list [--failed]``: the latest deliveries, or those failing / given up.
- ``events consume``: the SQS consumer of the bucket's S3 event notifications.

Registered on ``advanced-notes`` and ``flask --app wsgi`` by :mod:`advanced_notes.tools.cli`.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import click

from advanced_notes.api.context import current_services
from advanced_notes.tools.context import with_stack


@click.group("webhooks", help="Outbound webhooks (Standard Webhooks) of clip events.")
def webhooks_group() -> None:
    pass


def _dispatcher() -> Any:
    from advanced_notes.services.webhooks import WebhookDispatcher

    services = current_services()
    return WebhookDispatcher(services.db, services.settings)


@webhooks_group.command("deliver")
@click.option("--loop", "loop_seconds", type=click.IntRange(1, 3600), default=None, help="Repeat every N seconds.")
@with_stack()
def webhooks_deliver(loop_seconds: int | None) -> None:
    """Send every due webhook once (failures are retried by a later run, with backoff).

    Safe on several machines at once: each delivery is claimed before it is sent.
    """
    dispatcher = _dispatcher()
    if not current_services().settings.webhook_secret:
        raise click.ClickException("WEBHOOK_SECRET is not set: nothing can be signed")
    stop = _stop_flag()
    while True:
        result = dispatcher.deliver_due()
        click.echo(f"delivered {result.delivered}, failed {result.failed} (will retry), given up {result.given_up}")
        if loop_seconds is None or stop["set"]:
            return
        _sleep(loop_seconds, stop)


@webhooks_group.command("list")
@click.option("--failed", is_flag=True, help="Only deliveries failing or given up.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@with_stack()
def webhooks_list(failed: bool, limit: int) -> None:
    """List recent deliveries, newest first; exits 1 with --failed when any is given up."""
    from advanced_notes.domain.redact import redact_text, redact_url

    dispatcher = _dispatcher()
    rows = dispatcher.listing(failed_only=failed, limit=limit)
    for row in rows:
        state = "delivered" if row.delivered_at else "given up" if row.given_up_at else "pending"
        click.echo(
            f"{row.created_at.isoformat()} {row.event_id} {row.event_type} clip={row.clip_id} "
            f"to={redact_url(row.endpoint_url)} state={state} attempts={row.attempts} "
            f"last={redact_text(row.last_error, [row.endpoint_url]) if row.last_error else row.last_status}"
        )
    counts = dispatcher.counts()
    click.echo(
        f"pending {counts['pending']} (failing {counts['failing']}), given up {counts['given_up']}, "
        f"delivered {counts['delivered']}"
    )
    if failed and counts["given_up"]:
        raise SystemExit(1)


def _stop_flag() -> dict[str, bool]:
    """A flag set by SIGTERM/SIGINT: the current batch finishes, then the command exits."""
    stop = {"set": False}

    def handler(signum: int, frame: object) -> None:
        stop["set"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _sleep(seconds: float, stop: dict[str, bool]) -> None:
    deadline = time.monotonic() + seconds
    while not stop["set"] and time.monotonic() < deadline:
        time.sleep(min(0.5, deadline - time.monotonic()))


@click.group("events", help="Bucket event notifications (S3 ObjectCreated) that finish uploads.")
def events_group() -> None:
    pass


@events_group.command("consume")
@click.option("--once", is_flag=True, help="Drain what is in the queue now, then exit (tests, cron).")
@click.option("--queue-url", default=None, help="SQS queue URL (default: S3_EVENTS_QUEUE_URL).", metavar="URL")
@click.option("--wait", "wait_seconds", default=20, show_default=True, type=click.IntRange(0, 20), help="Long poll, s.")
@with_stack()
def events_consume(once: bool, queue_url: str | None, wait_seconds: int) -> None:
    """Long-poll the SQS queue of the bucket's S3 event notifications and finish the uploads they report.

    Each record goes through the same checks as complete. A message is deleted once all
    its records are settled (a poison record is settled as unhandled), or given up and
    deleted on its S3_EVENTS_MAX_RECEIVES-th receive (0: never). SIGTERM (or Ctrl-C) finishes the current batch,
    then exits 0. Several consumers may share the queue. Due webhooks are delivered
    after each batch when WEBHOOK_URLS is set. Exits 1 when the queue cannot be reached.
    """
    from advanced_notes.adapters.queue import SqsQueue
    from advanced_notes.domain.errors import StorageUnavailable
    from advanced_notes.services.events import EventConsumer

    services = current_services()
    settings = services.settings
    url = queue_url or settings.s3_events_queue_url
    if not url:
        raise click.UsageError("no queue: pass --queue-url or set S3_EVENTS_QUEUE_URL")
    after_batch = None
    if settings.webhook_urls and settings.webhook_secret:
        after_batch = _dispatcher().deliver_due
    stop = _stop_flag()
    consumer = EventConsumer(SqsQueue(settings, url), services.events, after_batch, settings.s3_events_max_receives)
    try:
        report = consumer.run(once=once, should_stop=lambda: stop["set"], wait_seconds=wait_seconds)
    except StorageUnavailable as exc:
        raise click.ClickException(exc.message) from exc
    outcomes = ", ".join(f"{k} {v}" for k, v in report.records.as_dict().items() if v)
    click.echo(
        f"messages received {report.received}, deleted {report.deleted}, kept for redelivery {report.kept}, "
        f"given up {report.given_up}; "
        f"records: {outcomes or 'none'}"
    )
