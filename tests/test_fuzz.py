"""A short schemathesis run in the suite (the full >= 10,000-request run is bench/fuzz.py)."""

from __future__ import annotations

import pytest

from bench.fuzz import run_schemathesis
from bench.loopback import serving

pytestmark = pytest.mark.e2e


def test_short_schema_fuzz_run_finds_nothing():
    with serving() as service:
        code, output = run_schemathesis(service.base_url, service.token, max_examples=8, seed=20261121)
    counts = service.counter.counts
    assert sum(counts.values()) > 300
    assert not [s for s in counts if s >= 500], counts
    assert code == 0, output[-4000:]
