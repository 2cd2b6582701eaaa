"""Prometheus metrics at ``/metrics`` through prometheus-flask-exporter.

- Requests: ``flask_http_request_total`` and ``flask_http_request_duration_seconds`` by
  method, route template (``url_rule``) and status.
- State, read from the database at scrape time: ``advanced_notes_clips{status}``,
  ``advanced_notes_pending_deletions`` and ``advanced_notes_pending_deletions_due``
  (the sweeper's backlog; a growing one means deletions keep failing).
- ``advanced_notes_workers``: 1 per live process serving the app (summed over gunicorn
  workers in multi-process mode, ``livesum``: each worker counts itself in from gunicorn's
  ``post_worker_init``, never a CLI command sharing the directory). More than the
  configured worker count means dead workers' files were not dropped (gunicorn.conf.py's
  ``child_exit``).
- Sweeper runs (a separate cron process) write their results to a textfile for
  node_exporter: ``sweep --metrics-file``.

Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py does) so every
worker's counters are added up; without it, each process reports its own.
``/metrics`` has no auth: expose it only to your monitoring network.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import Any

from flask import Flask
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_flask_exporter import PrometheusMetrics
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from advanced_notes.adapters.db import Database
from advanced_notes.adapters.models import AudioClip, ClipStatus, PendingDeletion, WebhookDelivery
from advanced_notes.domain.clock import utcnow
from advanced_notes.services import telemetry

_Counts = tuple[dict[str, int], int, int, dict[str, int]]

#: Seconds a scrape's counts are reused. The counts are full-table aggregates, and
#: /metrics needs no token: a client hitting it in a loop must not run them every time.
STATE_CACHE_SECONDS = 5.0


class StateCollector(Collector):
    """Clips by status and the deletion backlog, counted when Prometheus scrapes.

    Args:
        db: the database; cache_seconds: how long one count is reused (monotonic clock),
            so scrapes more frequent than that cost no query.
    """

    def __init__(self, db: Database, cache_seconds: float = STATE_CACHE_SECONDS):
        self.db = db
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, _Counts] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        clips = GaugeMetricFamily("advanced_notes_clips", "Audio clips by status.", labels=["status"])
        backlog = GaugeMetricFamily("advanced_notes_pending_deletions", "Recorded object deletions not finished.")
        due = GaugeMetricFamily("advanced_notes_pending_deletions_due", "Recorded deletions due for a retry now.")
        webhooks = GaugeMetricFamily(
            "advanced_notes_webhook_deliveries",
            "Outbound webhook deliveries by state: pending (not yet delivered, still tried), "
            "failing (pending after a failure) and given_up (kept for `webhooks list --failed`).",
            labels=["state"],
        )
        counted = self._counts()
        if counted is None:
            return  # a scrape during a database outage shows the request metrics only
        counts, total, ready, hooks = counted
        for status in ClipStatus:
            clips.add_metric([status.value], counts.get(status.value, 0))
        backlog.add_metric([], total)
        due.add_metric([], ready)
        for state, count in hooks.items():
            webhooks.add_metric([state], count)
        yield from (clips, backlog, due, webhooks)

    def _counts(self) -> _Counts | None:
        # One thread counts while concurrent scrapes wait for its result.
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            fresh = self._query()
            if fresh is not None:
                self._cached = (now, fresh)
            return fresh

    def _query(self) -> _Counts | None:
        try:
            with self.db.read() as session:
                counts = dict(session.execute(select(AudioClip.status, func.count()).group_by(AudioClip.status)).all())
                total = session.scalar(select(func.count()).select_from(PendingDeletion)) or 0
                ready = (
                    session.scalar(
                        select(func.count())
                        .select_from(PendingDeletion)
                        .where(PendingDeletion.next_attempt_at <= utcnow())
                    )
                    or 0
                )
                # One query for the three webhook states (COUNT ... FILTER: PostgreSQL, SQLite >= 3.30).
                tried = WebhookDelivery.delivered_at.is_(None) & WebhookDelivery.given_up_at.is_(None)
                row = session.execute(
                    select(
                        func.count().filter(tried),
                        func.count().filter(tried & WebhookDelivery.last_error.is_not(None)),
                        func.count().filter(WebhookDelivery.given_up_at.is_not(None)),
                    ).select_from(WebhookDelivery)
                ).one()
                hooks = {"pending": row[0] or 0, "failing": row[1] or 0, "given_up": row[2] or 0}
        except SQLAlchemyError:
            return None
        return counts, total, ready, hooks


class _MultiProcessCollector(MultiProcessCollector):
    """prometheus_client's multi-process collector, minus files still being created.

    A worker that is booting creates its metrics file and sizes it a moment later; a scrape
    in between fails on the empty file and answers 500 (prometheus/client_python#1199, open).
    Worker recycling makes that window frequent, so empty files are skipped: they hold no
    sample yet. A file removed between the listing and the read is handled upstream.
    """

    def collect(self) -> Iterable[Metric]:
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            with suppress(FileNotFoundError):
                if os.path.getsize(path) > 0:
                    files.append(path)
        metrics: Iterable[Metric] = self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        return metrics


class _MultiProcessMetrics(PrometheusMetrics):
    """prometheus-flask-exporter for gunicorn workers: every worker's files, plus the state.

    The library's multi-process export builds a fresh registry per scrape with only the
    stock file collector, so collectors of the app's own registry (the clip states here)
    never reached ``/metrics`` under gunicorn. This export reads the files with the
    collector above and adds the app's ``extra`` collectors.
    """

    def __init__(self, app: Flask, extra: list[Collector], **kwargs: Any):
        self._extra = extra
        super().__init__(app=app, path="/metrics", **kwargs)

    def generate_metrics(self, accept_header: str | None = None, names: list[str] | None = None) -> tuple[str, str]:
        registry = CollectorRegistry()
        _MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        for collector in self._extra:
            registry.register(collector)
        source: Collector = registry.restricted_registry(names) if names else registry
        generate_latest, content_type = choose_encoder(accept_header or "")
        return generate_latest(source).decode("utf-8"), content_type


def init_metrics(app: Flask, db: Database, version: str, cache_seconds: float = STATE_CACHE_SECONDS) -> None:
    """Serve ``/metrics`` for ``app`` (multi-process when ``PROMETHEUS_MULTIPROC_DIR`` is set).

    ``cache_seconds``: how long the state counts are reused (``METRICS_CACHE_SECONDS``).
    """
    registry = CollectorRegistry()
    state = StateCollector(db, cache_seconds)
    options = {"registry": registry, "group_by": "url_rule", "excluded_paths": ["^/metrics$"]}
    multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    if multiprocess:
        metrics: PrometheusMetrics = _MultiProcessMetrics(app, [state], **options)
    else:
        registry.register(state)
        # The completion, event and webhook counters (services/telemetry.py); under
        # gunicorn they are read from the per-process files instead.
        for counter in telemetry.ALL:
            registry.register(counter)
        metrics = PrometheusMetrics(app, path="/metrics", **options)
    metrics.info("advanced_notes_info", "Advanced Notes audio clips service.", version=version)
    if not multiprocess:
        _workers_gauge(registry).set(1)
    # In multi-process mode every process that builds the app shares the directory, CLI
    # commands included (db upgrade, sweep, webhooks deliver): a live gauge written here
    # would outlive them, since only gunicorn's child_exit drops a pid's files. Workers
    # count themselves in instead, from gunicorn's post_worker_init (mark_serving).


def _workers_gauge(registry: CollectorRegistry | None) -> Gauge:
    return Gauge(
        "advanced_notes_workers",
        "Live processes serving the app.",
        multiprocess_mode="livesum",
        registry=registry,
    )


_serving_lock = threading.Lock()
_serving: Gauge | None = None


def mark_serving() -> None:
    """Count this process in ``advanced_notes_workers`` (multi-process mode: a gunicorn worker).

    Called by gunicorn.conf.py's ``post_worker_init`` in each worker once the app is
    loaded. The value lives in this pid's ``gauge_livesum_<pid>.db`` in
    ``PROMETHEUS_MULTIPROC_DIR`` (read from the directory, so the gauge is not registered
    anywhere), and the master's ``child_exit`` removes that file when the worker exits.
    Idempotent; a no-op without ``PROMETHEUS_MULTIPROC_DIR`` (then :func:`init_metrics`
    sets the gauge in the app's own registry).
    """
    global _serving
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    with _serving_lock:
        if _serving is None:
            _serving = _workers_gauge(None)
            _serving.set(1)
