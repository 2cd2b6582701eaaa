"""The dev terminal stays readable, and `make dev` takes its options.

- ``LOG_FORMAT=text`` (what ``advanced-notes dev`` chooses) writes one short access line per
  request; ``json`` (the default) keeps the collector's fields.
- ``make dev PORT=... S3_PORT=... DEV_ARGS=...`` forwards them to ``advanced-notes dev``,
  read from ``make -n`` (the command make would run), and a ``PORT`` from the shell does not.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import sys

import pytest

from advanced_notes.api.context import services_of
from advanced_notes.api.logs import TextFormatter, configure_logging
from advanced_notes.tools.devserver import EmbeddedOptions, embedded_config
from testkit.paths import REPO


def lines_of(app, settings, *paths: str) -> list[str]:
    """What the root handler that ``configure_logging(settings)`` sets up writes for GETs of ``paths``."""
    root = logging.getLogger()
    saved, level = root.handlers, root.level
    root.handlers = []  # as in a fresh process
    try:
        configure_logging(settings)
        stream = io.StringIO()
        root.handlers[0].setStream(stream)
        client = app.test_client()
        for path in paths:
            client.get(path)
        logging.getLogger("advanced_notes.somewhere").warning("disk %s", "full")
    finally:
        root.handlers = saved
        root.setLevel(level)
    return stream.getvalue().splitlines()


def test_text_format_is_one_short_line_per_request(app):
    settings = services_of(app).settings.model_copy(update={"log_format": "text"})
    lines = lines_of(app, settings, "/healthz", "/api/audio-clips?secret=1")
    assert re.fullmatch(r"\d\d:\d\d:\d\d GET /healthz 200 \d+ ms", lines[0]), lines
    assert re.fullmatch(r"\d\d:\d\d:\d\d GET /api/audio-clips 401 \d+ ms", lines[1]), lines  # never the query
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING advanced_notes\.somewhere: disk full", lines[2]), lines


def test_json_stays_the_default(app):
    settings = services_of(app).settings
    assert settings.log_format == "json"
    lines = lines_of(app, settings, "/healthz")
    assert lines[0].startswith("{") and '"message": "request"' in lines[0]


def test_the_text_formatter_keeps_tracebacks():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("advanced_notes.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    text = TextFormatter().format(record)
    assert "ERROR advanced_notes.x: failed" in text and "ValueError: boom" in text


def test_the_dev_stack_chooses_text_and_its_event_queue():
    config = embedded_config(EmbeddedOptions(port=8100, s3_port=9100), REPO / "instance" / "x.sqlite")
    assert config["LOG_FORMAT"] == "text"
    assert config["S3_EVENTS_QUEUE_URL"] == "http://127.0.0.1:9100/123456789012/advanced-notes-dev-events"


def make_dev(*args: str, **env: str) -> str:
    """The command ``make -n dev`` prints (the install step is skipped: STAMP points at a file)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PORT", "S3_PORT", "DEV_ARGS")} | env
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "dev", "STAMP=Makefile", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    (line,) = [line for line in result.stdout.splitlines() if "advanced-notes dev" in line]
    return line.split("advanced-notes ", 1)[1].strip()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_dev_forwards_its_options():
    assert make_dev() == "dev"
    assert make_dev("PORT=8100", "S3_PORT=9100") == "dev --port 8100 --s3-port 9100"
    assert make_dev("S3_PORT=9100", "DEV_ARGS=--no-worker --sub bob") == "dev --s3-port 9100 --no-worker --sub bob"
    # A PORT exported for another program does not move the dev server.
    assert make_dev(PORT="3000") == "dev"
    assert make_dev(DEV_ARGS="--port 8200") == "dev --port 8200"
