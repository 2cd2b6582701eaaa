"""Outbound webhooks: tell the rest of the app when a clip changes (docs/events.md).

Events ``clip.ready``, ``clip.rejected``, ``clip.expired``, ``clip.deleted``,
``clip.processed`` and ``clip.processing_failed`` are written
to ``webhook_deliveries`` (one row per receiver) in the same transaction as the
transition, then sent by :class:`WebhookDispatcher` from the ``webhooks deliver``
command, the sweeper or the event consumer, never from an API request. Bodies are
signed and formatted per the Standard Webhooks specification with the
``standardwebhooks`` library (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``); ``webhook-id`` is the same on every retry of one event, so a
receiver deduplicates on it. Non-2xx answers and timeouts are retried with exponential
backoff until ``WEBHOOK_GIVE_UP_SECONDS`` after the event, then the row is marked given
up and stays listed (``webhooks list --failed``) and counted (``/metrics``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from standardwebhooks.webhooks import Webhook

from advanced_notes.adapters import outbox_sql
from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import ClipRecord, WebhookDelivery
from advanced_notes.adapters.outbox_sql import Session
from advanced_notes.domain.backoff import exponential_backoff
from advanced_notes.domain.clock import utcnow
from advanced_notes.domain.redact import redact_text, redact_url
from advanced_notes.services.telemetry import WEBHOOK_ATTEMPTS
from advanced_notes.settings import Settings

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "clip.ready",
    "clip.rejected",
    "clip.expired",
    "clip.deleted",
    "clip.processed",
    "clip.processing_failed",
)
#: Fields of a clip in an event: the API's clip (api/schemas.py ClipSchema) minus URLs.
CLIP_FIELDS = (
    "id",
    "note_id",
    "status",
    "mime_type",
    "bytes",
    "duration_ms",
    "measured_duration_ms",
    "checksum_sha256",
    "storage_key",
    "etag",
    "stored_bytes",
    "created_at",
    "updated_at",
    "completed_at",
)
#: While one deliverer sends a row, others leave it alone for this long.
CLAIM_LEASE = dt.timedelta(minutes=2)
BACKOFF_BASE_SECONDS = 10
BACKOFF_MAX_SECONDS = 3600


def backoff(attempts: int) -> dt.timedelta:
    """Delay before retry number ``attempts`` (1-based): 10 s, 20 s, 40 s, ... at most 1 h."""
    return exponential_backoff(attempts, base_seconds=BACKOFF_BASE_SECONDS, max_seconds=BACKOFF_MAX_SECONDS)


def _timestamp(value: dt.datetime | None) -> str | None:
    # The API's format (api/schemas.py UTCDateTime): ISO 8601 UTC, milliseconds, "Z".
    if value is None:
        return None
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def clip_data(clip: ClipRecord, **overrides: Any) -> dict[str, Any]:
    """``clip`` as the API shows it, minus URLs, with ``overrides`` (new column values) applied."""
    data: dict[str, Any] = {}
    for name in CLIP_FIELDS:
        value = overrides.get(name, getattr(clip, name))
        if isinstance(value, dt.datetime):
            value = _timestamp(value)
        elif isinstance(value, uuid.UUID):
            value = str(value)
        data[name] = value
    return data


class WebhookOutbox:
    """Records events in the caller's transaction; a no-op when ``WEBHOOK_URLS`` is empty.

    Args:
        settings: ``webhook_urls`` (the receivers).
    """

    def __init__(self, settings: Settings):
        self.urls = settings.webhook_urls

    def enqueue(
        self,
        session: Session,
        event_type: str,
        clip: ClipRecord,
        extra: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> str | None:
        """Record ``event_type`` for ``clip`` for every receiver, inside ``session``.

        Args:
            session: the transaction of the transition itself (it commits both or neither).
            event_type: one of :data:`EVENT_TYPES`.
            clip: the clip; ``overrides``: the values the transition just wrote.
            extra: more members of ``data`` (``{"rejection": {"reason": ..., "message": ...}}``).
        Returns:
            the event id (Standard Webhooks ``webhook-id``), or None with no receivers.
        """
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        if not self.urls:
            return None
        now = utcnow()
        event_id = f"msg_{uuid.uuid4().hex}"
        body = json.dumps(
            {
                "type": event_type,
                "timestamp": _timestamp(now),
                "data": {"clip": clip_data(clip, **overrides), **(extra or {})},
            },
            separators=(",", ":"),
        )
        rows = [
            WebhookDelivery(
                event_id=event_id,
                event_type=event_type,
                clip_id=clip.id,
                endpoint_url=url,
                payload=body,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            for url in self.urls
        ]
        outbox_sql.add_rows(session, rows)
        return event_id


@dataclass
class DeliveryResult:
    """What one :meth:`WebhookDispatcher.deliver_due` run did (counts of rows)."""

    delivered: int = 0
    failed: int = 0
    given_up: int = 0


class WebhookDispatcher:
    """Sends due rows of ``webhook_deliveries``.

    Args:
        db: the database; settings: ``webhook_secret``, ``webhook_timeout_seconds``,
            ``webhook_give_up_seconds``.
        session: the HTTP session (tests may pass one; default a new ``requests.Session``).

    Safe on several machines at once: each row is claimed with a compare-and-set lease.
    """

    def __init__(self, db: Database, settings: Settings, session: requests.Session | None = None):
        # Imported here: web workers never deliver webhooks, and requests would add to
        # their resident memory (docs/performance.md's footprint target).
        import requests

        self.db = db
        self.secret = settings.webhook_secret
        self.timeout = settings.webhook_timeout_seconds
        self.give_up_after = dt.timedelta(seconds=settings.webhook_give_up_seconds)
        self.http = session or requests.Session()
        self._request_error = requests.RequestException

    def deliver_due(self, now: dt.datetime | None = None, batch_size: int = 100) -> DeliveryResult:
        """Send every row due at ``now`` (default: the clock), one attempt each.

        Returns:
            counts of rows delivered, failed (rescheduled with backoff) and given up.
        """
        result = DeliveryResult()
        if not self.secret:
            return result
        signer = Webhook(self.secret)
        now = now or utcnow()
        attempted: set[uuid.UUID] = set()
        while rows := [r for r in self._claim(now, batch_size) if r.id not in attempted]:
            for row in rows:
                attempted.add(row.id)
                self._attempt(signer, row, now, result)
        return result

    def _claim(self, now: dt.datetime, limit: int) -> list[WebhookDelivery]:
        return outbox_sql.claim_due(self.db, WebhookDelivery, now=now, limit=limit, lease=CLAIM_LEASE)

    def _attempt(self, signer: Webhook, row: WebhookDelivery, now: dt.datetime, result: DeliveryResult) -> None:
        sent_at = utcnow()
        headers = {
            "content-type": "application/json",
            "webhook-id": row.event_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signer.sign(row.event_id, sent_at, row.payload),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = self.http.post(
                row.endpoint_url,
                data=row.payload.encode(),
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except self._request_error as exc:
            # requests quotes the URL's path and query (a token) in its messages.
            error = redact_text(f"{exc.__class__.__name__}: {exc}", [row.endpoint_url])[:500]
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error}
        if error is None:
            values.update(delivered_at=utcnow(), next_attempt_at=None)
            result.delivered += 1
            WEBHOOK_ATTEMPTS.labels("delivered").inc()
        elif now - row.created_at >= self.give_up_after:
            values.update(given_up_at=now, next_attempt_at=None)
            result.given_up += 1
            WEBHOOK_ATTEMPTS.labels("given_up").inc()
            log.error(
                "webhook %s to %s given up after %d attempts: %s",
                row.event_id,
                redact_url(row.endpoint_url),
                attempts,
                error,
            )
        else:
            values.update(next_attempt_at=now + backoff(attempts))
            result.failed += 1
            WEBHOOK_ATTEMPTS.labels("failed").inc()
            log.warning(
                "webhook %s to %s failed (attempt %d): %s", row.event_id, redact_url(row.endpoint_url), attempts, error
            )
        outbox_sql.update_row(self.db, WebhookDelivery, row.id, **values)

    def listing(self, *, failed_only: bool, limit: int = 100) -> list[WebhookDelivery]:
        """Rows for operators, newest first: with ``failed_only``, given up or retrying after a failure."""
        return outbox_sql.webhook_listing(self.db, failed_only=failed_only, limit=limit)

    def counts(self) -> dict[str, int]:
        """Rows by state: ``pending`` (not yet delivered, still tried), ``failing`` (pending
        after at least one failure), ``given_up`` and ``delivered``."""
        return outbox_sql.webhook_counts(self.db)
