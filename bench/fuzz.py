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
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.loopback import DEFAULT_SETTINGS, serving

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SEED = 13
#: STORAGE_EVENTS_TOKEN of the fuzzed service (schemathesis.toml sends it to that endpoint).
STORAGE_EVENTS_TOKEN = "fuzz-storage-events-" + "t" * 32
#: The settings the fuzzed service runs with, over bench.loopback's defaults.
FUZZ_SETTINGS = {"STORAGE_EVENTS_TOKEN": STORAGE_EVENTS_TOKEN}
_LINKS = re.compile(r"API Links:\s+(\d+) covered / (\d+) selected / (\d+) total")


@dataclass(frozen=True)
class LinkCoverage:
    """The stateful phase's API links: ``covered`` (followed at least once) of ``total``."""

    covered: int
    total: int


def link_coverage(output: str) -> LinkCoverage | None:
    """Read ``API Links: <covered> covered / <selected> selected / <total> total`` from
    schemathesis' report (the last one); None when the stateful phase did not run."""
    found = _LINKS.findall(output)
    if not found:
        return None
    covered, _, total = found[-1]
    return LinkCoverage(int(covered), int(total))


def run_schemathesis(
    base_url: str,
    token: str,
    max_examples: int,
    seed: int | None = DEFAULT_SEED,
    workers: int = 1,
    phases: str | None = None,
) -> tuple[int, str]:
    """Run the schemathesis CLI (from the repository root, for schemathesis.toml).

    Args:
        base_url: the service, e.g. ``http://127.0.0.1:8000``.
        token: the bearer token of the API (``bearerAuth``); the storage events endpoint
            gets :data:`STORAGE_EVENTS_TOKEN` (the service must run with it).
        max_examples: cases per operation and phase (scenarios in the stateful phase).
        seed: Hypothesis' seed; None for a random one.
        workers: schemathesis workers.
        phases: a comma-separated subset of examples,coverage,fuzzing,stateful; None for all.
    Returns:
        (schemathesis' exit status, its stdout and stderr).
    """
    cli = Path(sys.executable).parent / "schemathesis"
    command = [
        str(cli),
        "run",
        f"{base_url}/api/openapi.json",
        "--max-examples",
        str(max_examples),
        "--workers",
        str(workers),
        "--no-color",
        "--suppress-health-check",
        "too_slow,filter_too_much",
        # No examples carried over from an earlier run: the seed alone decides the cases.
        "--generation-database",
        "none",
    ]
    if seed is not None:
        command += ["--seed", str(seed)]
    if phases:
        command += ["--phases", phases]
    # bench/fuzz_hooks.py PUTs real and mutated audio (single PUT or parts) after each
    # create, so the stateful phase's links (complete, playback, delete) reach the parsers,
    # and adds the links to the storage events endpoint. schemathesis.toml reads the two
    # bearer tokens from the environment.
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "bench.fuzz_hooks",
        "PYTHONPATH": str(REPO),
        "FUZZ_API_TOKEN": token,
        "FUZZ_STORAGE_EVENTS_TOKEN": STORAGE_EVENTS_TOKEN,
        "FUZZ_API_BASE_URL": base_url,
        "FUZZ_S3_BUCKET": DEFAULT_SETTINGS["S3_BUCKET"] or "",
    }
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600, env=env)
    return done.returncode, done.stdout + done.stderr


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
