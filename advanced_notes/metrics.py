"""Prometheus metrics at ``/metrics`` through prometheus-flask-exporter.

- Requests: ``flask_http_request_total`` and ``flask_http_request_duration_seconds`` by
  method, route template (``url_rule``) and status.
- State, read from the database at scrape time: ``advanced_notes_clips{status}``,
  ``advanced_notes_pending_deletions`` and ``advanced_notes_pending_deletions_due``
  (the sweeper's backlog; a growing one means deletions keep failing).
- Sweeper runs (a separate cron process) write their results to a textfile for
  node_exporter: ``sweep --metrics-file``.

Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py does) so every
worker's counters are added up; without it, each process reports its own.
``/metrics`` has no auth: expose it only to your monitoring network.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .db import Database, utcnow
from .models import AudioClip, ClipStatus, PendingDeletion


class StateCollector(Collector):
    """Clips by status and the deletion backlog, counted when Prometheus scrapes."""

    def __init__(self, db: Database):
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        clips = GaugeMetricFamily("advanced_notes_clips", "Audio clips by status.", labels=["status"])
        backlog = GaugeMetricFamily("advanced_notes_pending_deletions", "Recorded object deletions not finished.")
        due = GaugeMetricFamily("advanced_notes_pending_deletions_due", "Recorded deletions due for a retry now.")
        try:
            with self.db.read() as session:
                counts = dict(session.execute(select(AudioClip.status, func.count()).group_by(AudioClip.status)).all())
                total = session.scalar(select(func.count()).select_from(PendingDeletion)) or 0
                ready = session.scalar(select(func.count()).select_from(PendingDeletion)
                                       .where(PendingDeletion.next_attempt_at <= utcnow())) or 0
        except SQLAlchemyError:
            return  # a scrape during a database outage shows the request metrics only
        for status in ClipStatus:
            clips.add_metric([status.value], counts.get(status.value, 0))
        backlog.add_metric([], total)
        due.add_metric([], ready)
        yield from (clips, backlog, due)


def init_metrics(app: Flask, db: Database, version: str) -> None:
    """Serve ``/metrics`` for ``app`` (multi-process when ``PROMETHEUS_MULTIPROC_DIR`` is set)."""
    registry = CollectorRegistry()
    registry.register(StateCollector(db))
    options = {"registry": registry, "group_by": "url_rule", "excluded_paths": ["^/metrics$"]}
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

        metrics = GunicornInternalPrometheusMetrics(app, **options)
    else:
        from prometheus_flask_exporter import PrometheusMetrics

        metrics = PrometheusMetrics(app, path="/metrics", **options)
    metrics.info("advanced_notes_info", "Advanced Notes audio clips service.", version=version)
