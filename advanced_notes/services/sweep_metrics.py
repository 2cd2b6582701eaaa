"""A sweep's results as Prometheus gauges, for node_exporter's textfile collector."""

from __future__ import annotations

import time

from advanced_notes.services.sweep_report import SweepReport


def write_report_metrics(report: SweepReport, path: str) -> None:
    """Write ``report`` as gauges ``advanced_notes_sweeper_*`` to ``path`` (node_exporter textfile format).

    The file is replaced atomically, so node_exporter never reads half of it. The finding
    gauges (orphans, late, missing) are those of the last run; they stay 0 in runs
    without ``--reconcile``, so alert on them from the reconcile run's file.
    """
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    gauges = {
        "last_run_timestamp_seconds": ("When the last sweep finished (Unix time).", time.time()),
        "applied": ("1 when the last sweep made changes, 0 for a dry run.", int(report.applied)),
        "reconciled": ("1 when the last sweep reconciled bucket and database both ways.", int(report.reconciled)),
        "pending_checked": ("Pending clips the last sweep asked the store about one by one.", report.pending_checked),
        "finished_ready": ("Uploaded pending clips the last sweep made ready.", report.finished_ready),
        "finished_rejected": ("Uploaded pending clips the last sweep rejected.", report.finished_rejected),
        "finish_failed": ("Uploaded pending clips the last sweep could not verify.", report.finish_failed),
        "multipart_assembled": (
            "Pending multipart uploads with every part stored that the last sweep assembled.",
            report.multipart_assembled,
        ),
        "expired": ("Stale pending clips expired by the last sweep.", report.expired),
        "deletions_done": ("Recorded deletions finished by the last sweep.", report.deletions.done),
        "deletions_failed": ("Recorded deletions that failed in the last sweep.", report.deletions.failed),
        "orphan_objects": ("Objects no row or recorded deletion knows.", report.orphans.count),
        "orphans_deleted": ("Orphan objects deleted by the last sweep.", report.orphans_deleted),
        "late_objects": ("Objects of rejected or expired clips found.", report.late_objects.count),
        "missing_objects": ("Ready clips whose object is missing.", report.missing_objects.count),
        "objects_scanned": ("Objects listed by the last sweep.", report.objects_scanned),
        "multipart_uploads_abandoned": (
            "Abandoned multipart uploads found (expired/rejected/deleted clip, no clip, superseded).",
            sum(report.multipart.abandoned.values()),
        ),
        "multipart_uploads_aborted": ("Abandoned multipart uploads aborted.", report.multipart.aborted),
    }
    for name, (help_text, value) in gauges.items():
        Gauge(f"advanced_notes_sweeper_{name}", help_text, registry=registry).set(value)
    write_to_textfile(path, registry)
