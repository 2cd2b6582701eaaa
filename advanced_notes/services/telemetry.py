"""Counters of the paths that finish uploads and of the events around them.

Created unregistered (``registry=None``): :func:`advanced_notes.api.metrics.init_metrics`
adds them to the app's registry, and under gunicorn (``PROMETHEUS_MULTIPROC_DIR``) their
values live in the per-process files the multi-process collector adds up. Processes
without ``/metrics`` (the sweeper, the consumer) report through their own summaries
and ``--metrics-file``.
"""

from __future__ import annotations

from prometheus_client import Counter

#: Transitions out of pending won by each path: path = client | event | sweeper,
#: outcome = ready | rejected.
COMPLETIONS = Counter(
    "advanced_notes_completions",
    "Clips finished (ready or rejected), by the path that finished them.",
    ["path", "outcome"],
    registry=None,
)

#: Bucket event records handled, by source (webhook | sqs) and outcome (see
#: :data:`advanced_notes.services.events.OUTCOMES`; plus ``given_up`` on sqs: the failed
#: records of a message deleted after ``S3_EVENTS_MAX_RECEIVES`` receives).
STORAGE_EVENTS = Counter(
    "advanced_notes_storage_events",
    "Bucket event records received, by source and what became of them.",
    ["source", "outcome"],
    registry=None,
)

#: Outbound webhook attempts by result: delivered | failed | given_up.
WEBHOOK_ATTEMPTS = Counter(
    "advanced_notes_webhook_attempts",
    "Outbound webhook delivery attempts, by result.",
    ["result"],
    registry=None,
)

ALL = (COMPLETIONS, STORAGE_EVENTS, WEBHOOK_ATTEMPTS)
