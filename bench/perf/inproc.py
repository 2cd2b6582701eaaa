"""Calling a WSGI app in-process, as gunicorn would, for profiles and SQL capture.

The environ of each request is built before timing starts (werkzeug's EnvironBuilder),
so a profile holds only the app's own work: no socket, no HTTP parsing, no client.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parents[1]


def setup_environment(env: dict[str, str]) -> None:
    """Apply the service's settings and make the repository and this folder importable."""
    os.environ.update(env)
    for path in (str(REPO_DIR), str(BENCH_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)


def make_environ(item: list[Any]) -> dict[str, Any]:
    """A WSGI environ for ``[method, path, headers, json_body_or_None]`` (a loadgen request)."""
    from werkzeug.test import EnvironBuilder

    method, path, headers, body = item
    builder = EnvironBuilder(
        path=path,
        method=method,
        headers=headers,
        base_url="http://127.0.0.1:8000",
        data=json.dumps(body) if body is not None else None,
        content_type="application/json" if body is not None else None,
    )
    try:
        return builder.get_environ()
    finally:
        builder.close()


def call(app: Any, environ: dict[str, Any]) -> int:
    """Run one request through ``app``; return the HTTP status code."""
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info: Any = None):
        statuses.append(status)
        return lambda data: None

    body = app(environ, start_response)
    try:
        for _ in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return int(statuses[-1].split()[0])
