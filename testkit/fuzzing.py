"""Schema fuzzing with schemathesis against the service's own OpenAPI document.

The runner and its report parsing, shared by ``bench/fuzz.py`` (the command-line run) and
``tests/foundation/test_fuzz.py`` (a short run in the suite).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from testkit.loopback import DEFAULT_SETTINGS

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SEED = 13
#: STORAGE_EVENTS_TOKEN of the fuzzed service (schemathesis.toml sends it to that endpoint).
STORAGE_EVENTS_TOKEN = "fuzz-storage-events-" + "t" * 32
#: The settings the fuzzed service runs with, over testkit.loopback's defaults.
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
