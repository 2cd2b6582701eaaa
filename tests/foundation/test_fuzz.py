"""A short schemathesis run in the suite (the full run is bench/fuzz.py).

Every phase at a small size, over the service as bench/fuzz.py serves it (the storage
events endpoint on, with its token): no 5xx, no failed check, and the stateful phase
follows at least :data:`LINKS_FLOOR` of the document's API links, the multipart and
storage events operations among the steps it reaches.
"""

from __future__ import annotations

import json

import pytest

from testkit.fuzzing import FUZZ_SETTINGS, link_coverage, run_schemathesis
from testkit.loopback import serving

pytestmark = pytest.mark.e2e

#: Links the stateful phase must follow in this short run (seeded; the service's random
#: ids still vary the scenarios a little between runs). Before scenarios could start at
#: create, a run this size followed none.
LINKS_FLOOR = 40


def test_short_schema_fuzz_run_finds_nothing_and_follows_the_links(tmp_path, monkeypatch):
    report = tmp_path / "hooks.json"
    monkeypatch.setenv("FUZZ_HOOKS_REPORT", str(report))
    monkeypatch.setenv("FUZZ_DEBUG", "1")  # the hooks count every operation's statuses
    with serving(**FUZZ_SETTINGS) as service:
        code, output = run_schemathesis(service.base_url, service.token, max_examples=8, seed=13)
    counts = service.counter.counts
    assert sum(counts.values()) > 300
    assert not [s for s in counts if s >= 500], counts
    assert code == 0, output[-4000:]
    coverage = link_coverage(output)
    assert coverage is not None, output[-4000:]
    assert coverage.covered >= LINKS_FLOOR, (coverage, output[-4000:])
    calls = json.loads(report.with_name("hooks.json.calls").read_text())
    # Steps of stateful scenarios that succeeded: the links led to real clips.
    reached = {
        key.removeprefix("stateful: ").removesuffix(" 200")
        for key in calls
        if key.startswith("stateful: ") and key.endswith(" 200")
    }
    assert {
        "POST /api/storage-events",
        "GET /api/audio-clips/{clip_id}/playback",
        "POST /api/audio-clips/{clip_id}/multipart/s3/complete",
    } <= reached, calls
