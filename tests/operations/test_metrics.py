"""Prometheus metrics: request counters, state gauges, sweeper results, and gunicorn's workers summed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from testkit.servers import gunicorn_serving
from tests.helpers import create, run_cli

REPO = Path(__file__).resolve().parents[2]


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


def test_cli_commands_sharing_the_multiproc_dir_leave_no_live_gauges(base_config, tmp_path):
    """CLI processes build the app too; with the workers' PROMETHEUS_MULTIPROC_DIR they used
    to leave a live ``advanced_notes_workers`` file each (19 read with 5 workers)."""
    import os
    import subprocess
    import sys

    prom = tmp_path / "prom"
    prom.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({**{k: str(v) for k, v in base_config.items()}, "PROMETHEUS_MULTIPROC_DIR": str(prom)})
    for args in (["webhooks", "list"], ["db", "current"], ["webhooks", "deliver"]):
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert done.returncode in (0, 1), (args, done.stderr[-2000:])
    assert not list(prom.glob("gauge_live*")), sorted(p.name for p in prom.iterdir())
    with (
        (tmp_path / "gunicorn.log").open("wb") as log,
        gunicorn_serving(
            base_config, log, GUNICORN_WORKERS="2", GUNICORN_THREADS="1", PROMETHEUS_MULTIPROC_DIR=str(prom)
        ) as (base, _),
    ):
        deadline = time.monotonic() + 30
        while True:  # both workers count themselves in once booted
            workers = metric(requests.get(f"{base}/metrics", timeout=5).text, "advanced_notes_workers")
            if workers >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert workers == 2
        assert len(list(prom.glob("gauge_livesum_*.db"))) == 2
