"""Schema fuzzing: schemathesis against the service's own OpenAPI document.

Serves the app on loopback (werkzeug, threaded) over moto's threaded S3 server and a
fresh database, with ``STORAGE_EVENTS_TOKEN`` set so ``POST /api/storage-events`` is in the
document, mints a token, and runs ``schemathesis run`` with every check
(schemathesis.toml scopes the exceptions and names the two bearer tokens) and every
phase: examples, coverage, fuzzing and stateful (the OpenAPI links of the document, the
links schemathesis infers, and bench/fuzz_hooks.py's links to the storage events
endpoint). Every response is also counted by a WSGI middleware, so the 5xx figure does
not depend on schemathesis' own report.

    .venv/bin/python -m bench.fuzz                      # the default run: 500 examples per operation and phase
    .venv/bin/python -m bench.fuzz --max-examples 100   # the documented deep run (docs/security.md)
    .venv/bin/python -m bench.fuzz --max-examples 10    # a short run
    .venv/bin/python -m bench.fuzz --phases stateful --max-examples 300   # the stateful phase alone
    FUZZ_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/an_fuzz .venv/bin/python -m bench.fuzz

The run is bounded by ``--max-examples`` (per operation and phase; in the stateful
phase, scenarios of at most ``phases.stateful.max-steps`` steps) and seeded by ``--seed``
(default 13) with schemathesis' example database off, so the same command generates the
same cases; the service's random clip ids and timings still vary between runs.
It prints ``links covered: <covered> / <total>`` (the stateful phase's API links) and
``5xx responses: <n>``.

Exit status: schemathesis' (0 when nothing failed), or 1 when any response was a 5xx.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from testkit.fuzzing import DEFAULT_SEED, FUZZ_SETTINGS, link_coverage, run_schemathesis
from testkit.loopback import serving


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=500, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Hypothesis' seed (default %(default)s)")
    parser.add_argument("--phases", default=None, help="e.g. stateful; default: every phase")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="schemathesis workers; >1 has hit thread-safety errors inside schemathesis 4.32",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    report = Path(tempfile.mkdtemp()) / "hooks.json"
    os.environ["FUZZ_HOOKS_REPORT"] = str(report)  # bench/fuzz_hooks.py writes its PUT counts there
    started = time.monotonic()
    with serving(os.environ.get("FUZZ_DATABASE_URL"), **FUZZ_SETTINGS) as service:
        code, output = run_schemathesis(
            service.base_url, service.token, args.max_examples, args.seed, args.workers, args.phases
        )
        counts = service.counter.counts
    elapsed = time.monotonic() - started
    pattern = r"generated|passed|failed|Seed:|ST\d{3} |API Links|Stateful \(|Fuzzing \("
    summary = [line for line in output.splitlines() if re.search(pattern, line)]
    if report.exists():
        summary.append("hooks: " + report.read_text())
    print("\n".join(summary[-12:]))
    requests_served = sum(counts.values())
    server_errors = sum(n for status, n in counts.items() if status >= 500)
    coverage = link_coverage(output)
    links = f"{coverage.covered} / {coverage.total}" if coverage else "stateful phase did not run"
    print(f"links covered: {links}")
    print(f"requests served: {requests_served}; 5xx responses: {server_errors}; schemathesis exit: {code}")
    print("by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    print(f"run time: {elapsed:.0f} s (seed {args.seed}, --max-examples {args.max_examples})")
    if code != 0:
        print(output[-6000:])
    return code or (1 if server_errors else 0)


if __name__ == "__main__":
    sys.exit(main())
