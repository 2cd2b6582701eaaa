"""Schema fuzzing: schemathesis against the service's own OpenAPI document.

Serves the app on loopback (werkzeug, threaded) over moto's threaded S3 server and a
fresh database, mints a token, and runs ``schemathesis run`` with every check
(schemathesis.toml scopes the one exception) and every phase: examples, coverage,
fuzzing and stateful (OpenAPI links from create). Every response is also counted by a
WSGI middleware, so the 5xx figure does not depend on schemathesis' own report.

    .venv/bin/python -m bench.fuzz                      # full run, >= 10,000 requests
    .venv/bin/python -m bench.fuzz --max-examples 10    # a short run
    FUZZ_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/an_fuzz .venv/bin/python -m bench.fuzz

Exit status: schemathesis' (0 when nothing failed), or 1 when any response was a 5xx.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.loopback import serving

REPO = Path(__file__).resolve().parents[1]


def run_schemathesis(
    base_url: str, token: str, max_examples: int, seed: int | None = None, workers: int = 1
) -> tuple[int, str]:
    """Run the schemathesis CLI (from the repository root, for schemathesis.toml)."""
    cli = Path(sys.executable).parent / "schemathesis"
    command = [
        str(cli),
        "run",
        f"{base_url}/api/openapi.json",
        "-H",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(max_examples),
        "--workers",
        str(workers),
        "--no-color",
        "--suppress-health-check",
        "too_slow,filter_too_much",
    ]
    if seed is not None:
        command += ["--seed", str(seed)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
    return done.returncode, done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=500, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="schemathesis workers; >1 has hit thread-safety errors inside schemathesis 4.32",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with serving(os.environ.get("FUZZ_DATABASE_URL")) as service:
        code, output = run_schemathesis(service.base_url, service.token, args.max_examples, args.seed, args.workers)
        counts = service.counter.counts
    summary = [line for line in output.splitlines() if re.search(r"generated|passed|failed|Seed:|ST\d{3} ", line)]
    print("\n".join(summary[-12:]))
    requests_served = sum(counts.values())
    server_errors = sum(n for status, n in counts.items() if status >= 500)
    print(f"requests served: {requests_served}; 5xx responses: {server_errors}; schemathesis exit: {code}")
    print("by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    if code != 0:
        print(output[-6000:])
    return code or (1 if server_errors else 0)


if __name__ == "__main__":
    sys.exit(main())
