"""The storage doctor's report: its levels, one finding, and how a finding is printed."""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"
_CODE = re.compile(rb"<Code>([^<]+)</Code>")


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``level`` (ok/warn/fail/info), what was checked, what was
    found, and how to fix it."""

    level: str
    check: str
    detail: str
    fix: str = ""


def store_code(response: requests.Response) -> str:
    """The S3 error code in a store's XML answer (``<Code>``), else the HTTP status as text."""
    match = _CODE.search(response.content or b"")
    return match.group(1).decode() if match else str(response.status_code)


def render(finding: Finding) -> list[str]:
    """The lines ``storage check`` prints for ``finding``: the level, the check and what
    was found; then, when there is one, the fix (a ``note`` for ok and info findings)."""
    lines = [f"{finding.level.upper():<5} {finding.check}: {finding.detail}"]
    if finding.fix:
        lines.append(f"      {'fix' if finding.level in (FAIL, WARN) else 'note'}: {finding.fix}")
    return lines
