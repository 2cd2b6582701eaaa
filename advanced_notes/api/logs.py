"""One structured log line per request, with a request id; secrets never logged.

Each request gets an id (a valid incoming ``X-Request-ID``, else a new one), echoed in
the response. After the response, one line carries the id, method, path (never the
query string), status, duration in ms, owner and clip id. Presigned URLs, their
signatures and bearer tokens are never logged: the line has no URLs or headers, and
botocore's and urllib3's DEBUG output (canonical requests, signatures, full URLs) is
held at WARNING whatever ``LOG_LEVEL`` says.

``LOG_FORMAT=json`` (the default, for log collectors) writes each line as a JSON object with
those fields; ``LOG_FORMAT=text`` (what ``advanced-notes dev`` chooses, for a terminal) writes
the request line as ``12:00:01 GET /api/audio-clips 201 12 ms`` and any other line as
``12:00:01 WARNING logger: message``.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

from advanced_notes.settings import Settings

log = logging.getLogger("advanced_notes.request")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: Libraries whose DEBUG lines contain signatures or presigned URLs.
_NEVER_DEBUG = ("botocore", "boto3", "urllib3", "s3transfer")
#: Loggers whose INFO lines are noise in every process: alembic (1.16+) announces each of
#: its seven plugins at INFO whenever it is imported, so every CLI command printed them;
#: werkzeug's access line repeats our request line with ANSI colours and the full query
#: string (a presigned URL's signature) -- its warnings and errors still show.
_WARNINGS_ONLY = ("alembic.runtime.plugins", "werkzeug")


def configure_logging(settings: Settings) -> None:
    """Send logs to stderr as JSON (or text) at ``LOG_LEVEL``, unless logging is already set up.

    A process that configured logging itself (gunicorn's, the tests') keeps its handlers;
    the library loggers that could print signatures, and the noisy ones, are always held
    at WARNING.
    """
    for name in _NEVER_DEBUG + _WARNINGS_ONLY:
        logging.getLogger(name).setLevel(logging.WARNING)
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level"},
            )
        )
    else:
        handler.setFormatter(TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)


class TextFormatter(logging.Formatter):
    """``LOG_FORMAT=text``: one short line per request (time, method, path, status, ms), and
    ``time LEVEL logger: message`` (with any traceback) for every other line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        """The line for ``record`` (see the class)."""
        if record.name != log.name or not hasattr(record, "method"):
            return super().format(record)
        fields = record.__dict__
        ms = fields.get("duration_ms")
        took = f" {ms:.0f} ms" if isinstance(ms, (int, float)) else ""
        return f"{self.formatTime(record, self.datefmt)} {fields['method']} {fields['path']} {fields['status']}{took}"


def _start_request() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    request_id = getattr(g, "request_id", None) or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    started = getattr(g, "request_started", None)
    clip_id = (request.view_args or {}).get("clip_id")
    log.info(
        "request",
        extra={
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "owner": getattr(g, "owner_id", None),
            "clip_id": str(clip_id) if clip_id else None,
        },
    )
    return response


def init_request_logging(app: Flask) -> None:
    """Register the request-id and request-log hooks on ``app``."""
    app.before_request(_start_request)
    app.after_request(_finish_request)
