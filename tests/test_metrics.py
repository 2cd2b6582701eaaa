"""Prometheus metrics: request counters, state gauges, sweeper results, and gunicorn's workers summed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from .conftest import gunicorn_serving, run_cli
from .helpers import create

REPO = Path(__file__).resolve().parents[1]


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in metrics")


def test_requests_and_state(client, auth):
    create(client, auth)
    create(client, auth)
    client.get("/api/audio-clips", headers={"Authorization": "Bearer bad"})
    text = client.get("/metrics").get_data(as_text=True)
    # Per route: the duration histogram's count (the _total counter has method and status only).
    per_route = "flask_http_request_duration_seconds_count"
    assert metric(text, per_route, method="POST", status="201", url_rule="/api/audio-clips") >= 2
    assert metric(text, per_route, method="GET", status="401", url_rule="/api/audio-clips") >= 1
    assert metric(text, "advanced_notes_clips", status="pending") == 2
    assert metric(text, "advanced_notes_clips", status="ready") == 0
    assert metric(text, "advanced_notes_pending_deletions") == 0
    assert "/metrics" not in re.findall(r'url_rule="([^"]+)"', text)


def test_sweeper_writes_its_results(app, tmp_path):
    path = tmp_path / "sweeper.prom"
    result = run_cli(app, ["sweep", "--metrics-file", str(path)])
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert metric(text, "advanced_notes_sweeper_applied") == 0
    assert metric(text, "advanced_notes_sweeper_last_run_timestamp_seconds") > time.time() - 60


def test_gunicorn_config_sums_workers(base_config, make_token, tmp_path):
    prom = tmp_path / "prom"
    prom.mkdir()
    with (
        (tmp_path / "gunicorn.log").open("wb") as log,
        gunicorn_serving(
            base_config, log, GUNICORN_WORKERS="2", GUNICORN_THREADS="2", PROMETHEUS_MULTIPROC_DIR=str(prom)
        ) as (base, _),
    ):
        headers = {"Authorization": f"Bearer {make_token('gunicorn-user')}"}
        sent = 0
        # New connections until both workers have served some (each keeps its own counter file).
        while sent < 20 or len(list(prom.glob("counter_*.db"))) < 2:
            assert sent < 1000, "one worker served every request"
            assert requests.get(f"{base}/api/audio-clips", headers=headers, timeout=5).status_code == 200
            sent += 1
        text = requests.get(f"{base}/metrics", timeout=5).text
        assert (
            metric(
                text,
                "flask_http_request_duration_seconds_count",
                method="GET",
                status="200",
                url_rule="/api/audio-clips",
            )
            == sent
        )
