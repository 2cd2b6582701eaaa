"""Schema fuzzing: schemathesis against the service's own OpenAPI document.

Serves the app on loopback (werkzeug, threaded) over moto's threaded S3 server and a
fresh database, mints a token, and runs ``schemathesis run`` with every check
(schemathesis.toml scopes the one exception) and every phase: examples, coverage,
fuzzing and stateful (OpenAPI links from create). Every response is also counted by a
WSGI middleware, so the 5xx figure does not depend on schemathesis' own report.

    .venv/bin/python bench/fuzz.py                      # full run, >= 10,000 requests
    .venv/bin/python bench/fuzz.py --max-examples 10    # a short run
    FUZZ_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/an_fuzz .venv/bin/python bench/fuzz.py

Exit status: schemathesis' (0 when nothing failed), or 1 when any response was a 5xx.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from advanced_notes import create_app, migrate
from advanced_notes.auth import mint_token

REPO = Path(__file__).resolve().parents[1]


class StatusCounter:
    """WSGI middleware counting responses by status code."""

    def __init__(self, app):
        self.app = app
        self.counts: collections.Counter[int] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        def counting_start_response(status, headers, exc_info=None):
            with self._lock:
                self.counts[int(status.split()[0])] += 1
            return start_response(status, headers, exc_info)
        return self.app(environ, counting_start_response)


def serve(database_url: str | None = None):
    """Start moto and the app; return (base_url, token, counter, stop)."""
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    db_url = database_url or f"sqlite:///{tempfile.mkdtemp()}/fuzz.sqlite"
    migrate.upgrade(db_url)
    app = create_app({
        "APP_ENV": "test", "DATABASE_URL": db_url, "S3_ENDPOINT_URL": f"http://{host}:{port}",
        "S3_BUCKET": "fuzz", "S3_ADDRESSING_STYLE": "path", "AWS_ACCESS_KEY_ID": "fuzz",
        "AWS_SECRET_ACCESS_KEY": "fuzz-secret", "AUTH_JWT_SECRET": "fuzz-" + "s" * 40,
        # The fuzzer is one owner sending thousands of requests: limits get their own tests.
        "RATELIMIT_DEFAULT": "1000000 per minute", "MAX_PENDING_UPLOADS_PER_OWNER": "0",
    })
    services = app.extensions["advanced_notes"]
    services.storage.ensure_bucket()
    counter = StatusCounter(app)
    server = make_server("127.0.0.1", 0, counter, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        s3.stop()

    token = mint_token(services.settings, "fuzzer", 6 * 3600)
    return f"http://127.0.0.1:{server.server_port}", token, counter, stop


def run_schemathesis(base_url: str, token: str, max_examples: int, seed: int | None = None,
                     workers: int = 1) -> tuple[int, str]:
    """Run the schemathesis CLI (from the repository root, for schemathesis.toml)."""
    cli = Path(sys.executable).parent / "schemathesis"
    command = [str(cli), "run", f"{base_url}/api/openapi.json", "-H", f"Authorization: Bearer {token}",
               "--max-examples", str(max_examples), "--workers", str(workers), "--no-color",
               "--suppress-health-check", "too_slow,filter_too_much"]
    if seed is not None:
        command += ["--seed", str(seed)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
    return done.returncode, done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=500, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1,
                        help="schemathesis workers; >1 has hit thread-safety errors inside schemathesis 4.32")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.basicConfig(level=logging.WARNING)
    base_url, token, counter, stop = serve(os.environ.get("FUZZ_DATABASE_URL"))
    try:
        code, output = run_schemathesis(base_url, token, args.max_examples, args.seed, args.workers)
    finally:
        stop()
    summary = [line for line in output.splitlines() if re.search(r"generated|passed|failed|Seed:|ST\d{3} ", line)]
    print("\n".join(summary[-12:]))
    requests_served = sum(counter.counts.values())
    server_errors = sum(n for status, n in counter.counts.items() if status >= 500)
    print(f"requests served: {requests_served}; 5xx responses: {server_errors}; schemathesis exit: {code}")
    print("by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(counter.counts.items())))
    if code != 0:
        print(output[-6000:])
    return code or (1 if server_errors else 0)


if __name__ == "__main__":
    sys.exit(main())
