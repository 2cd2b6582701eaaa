"""What one sweep found and did: the report the ``sweep`` command prints and exports."""

from __future__ import annotations

from dataclasses import dataclass, field

from advanced_notes.services.deletions import AttemptResult
from advanced_notes.services.multipart_sweep import AbandonedUploads

#: Keys listed per category in a report (counts are always complete).
REPORT_SAMPLE = 20


@dataclass
class Finding:
    """A count and the first :data:`REPORT_SAMPLE` object keys of one kind of finding."""

    count: int = 0
    keys: list[str] = field(default_factory=list)

    def add(self, key: str) -> None:
        """Count ``key``, and keep it when fewer than :data:`REPORT_SAMPLE` are kept."""
        self.count += 1
        if len(self.keys) < REPORT_SAMPLE:
            self.keys.append(key)


@dataclass
class SweepReport:
    """What a sweep found and did (in a dry run: what it would do).

    ``pending_checked`` counts the pending clips asked about one by one (HEAD, or ListParts
    for a multipart upload); ``listed`` says whether the run listed the folder instead
    (pending clips above the threshold) or read an inventory (``reconciled``: the two-way
    pass ran, so the finding counts below it are meaningful).
    """

    applied: bool
    reconciled: bool = False
    listed: bool = False
    pending_checked: int = 0
    finished_ready: int = 0
    finished_rejected: int = 0
    finish_failed: int = 0
    uploads_in_grace: int = 0
    multipart_assembled: int = 0
    multipart_in_grace: int = 0
    expired: int = 0
    deletions_due: int = 0
    deletions: AttemptResult = field(default_factory=AttemptResult)
    objects_scanned: int = 0
    rows_scanned: int = 0
    orphans: Finding = field(default_factory=Finding)
    orphans_deleted: int = 0
    young_unknown_objects: int = 0
    awaiting_deletion: int = 0
    late_objects: Finding = field(default_factory=Finding)
    late_objects_deleted: int = 0
    missing_objects: Finding = field(default_factory=Finding)
    multipart: AbandonedUploads = field(default_factory=AbandonedUploads)

    def summary(self) -> list[str]:
        """Human-readable lines for the command's output."""
        verb = "" if self.applied else "would be "
        how = "listing the folder (many pending)" if self.listed else "asking the store per clip"
        lines = [
            f"mode: {'apply' if self.applied else 'dry run (nothing changed; pass --apply)'}"
            + (", reconcile" if self.reconciled else ""),
            f"pending clips checked: {self.pending_checked} ({how})",
            f"uploaded pending clips {verb}finished: {self.finished_ready + self.finished_rejected}"
            + (f" (ready {self.finished_ready}, rejected {self.finished_rejected})" if self.applied else ""),
            f"uploaded pending clips left for the client (grace period): {self.uploads_in_grace}",
            f"uploaded pending clips not finished (store failed; retried next run): {self.finish_failed}",
            f"of which multipart uploads with every part stored: {verb}assembled {self.multipart_assembled}, "
            f"in grace {self.multipart_in_grace}",
            f"stale pending clips {verb}expired: {self.expired}",
            f"recorded deletions due: {self.deletions_due}"
            + (
                f" (done {self.deletions.done}, awaiting URL expiry {self.deletions.waiting}, "
                f"failed {self.deletions.failed})"
                if self.applied
                else ""
            ),
            f"objects scanned: {self.objects_scanned}, rows scanned: {self.rows_scanned}",
            self.multipart.summary(self.applied),
        ]
        if not self.reconciled:
            return [*lines, "reconcile (orphan, late and missing objects): not run; sweep --reconcile does"]
        lines += [
            f"orphan objects (no row, no recorded deletion): {self.orphans.count}, deleted: {self.orphans_deleted}",
            f"unknown objects younger than the minimum age (left alone): {self.young_unknown_objects}",
            f"objects with a recorded deletion: {self.awaiting_deletion}",
            f"late objects of rejected/expired clips: {self.late_objects.count}, deleted: {self.late_objects_deleted}",
            f"ready clips whose object is missing: {self.missing_objects.count}",
        ]
        for title, finding in (
            ("orphan", self.orphans),
            ("late", self.late_objects),
            ("missing", self.missing_objects),
        ):
            lines += [f"  {title}: {key}" for key in finding.keys]
        return lines
