"""Rate limits hold across gunicorn workers.

With counters in process memory every worker counts alone: with the defaults and 5
workers one owner got 1,455 of 2,000 requests in a minute against a limit of 300. The
production recipe shares the counters in Redis; a production app with memory counters
and several workers says so at startup and in ``storage check``. Real parts: gunicorn
with the repo's gunicorn.conf.py and 4 workers on loopback, Redis on 127.0.0.1:6379
(db 5, and a fresh owner per run, so nothing collides with other tests).
"""

from __future__ import annotations

import collections
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests

from advanced_notes.app import create_app
from testkit.servers import gunicorn_serving
from tests.helpers import JWT_SECRET, run_cli

pytestmark = pytest.mark.e2e

REDIS_URL = "redis://127.0.0.1:6379/5"
WARNING = "rate limits do not hold across workers"


def _redis_or_fail() -> None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")


def _production(base_config, **extra: str) -> dict[str, str]:
    return {**base_config, "APP_ENV": "production", "S3_KEY_PREFIX": f"rl-{uuid.uuid4().hex[:8]}", **extra}


def test_production_with_memory_counters_and_several_workers_warns_at_startup(base_config, caplog):
    caplog.set_level(logging.WARNING, logger="advanced_notes.app")
    create_app(_production(base_config, GUNICORN_WORKERS="4"))
    warnings = [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]
    assert len(warnings) == 1 and "4 workers" in warnings[0] and "RATELIMIT_STORAGE_URI" in warnings[0], warnings
    caplog.clear()
    create_app(_production(base_config, GUNICORN_WORKERS="4", RATELIMIT_STORAGE_URI=REDIS_URL))
    create_app(_production(base_config, GUNICORN_WORKERS="1"))
    create_app(_production(base_config))  # one process: flask run, a command
    create_app({**base_config, "GUNICORN_WORKERS": "4"})  # not production
    assert not [r for r in caplog.records if WARNING in r.getMessage()]


def test_storage_check_warns_about_per_process_counters(base_config, monkeypatch):
    monkeypatch.setenv("GUNICORN_WORKERS", "5")
    app = create_app(_production(base_config))
    output = run_cli(app, ["storage", "check"]).output
    assert "WARN  rate limits across workers: RATELIMIT_STORAGE_URI is not set" in output, output
    assert "5 workers" in output
    shared = create_app(_production(base_config, RATELIMIT_STORAGE_URI=REDIS_URL))
    assert "rate limits across workers" not in run_cli(shared, ["storage", "check"]).output


def _hammer(base: str, owner: str, total: int, threads: int = 8) -> collections.Counter[int]:
    token = jwt.encode({"sub": owner, "exp": int(time.time()) + 600}, JWT_SECRET, algorithm="HS256")

    def one(_: int) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return requests.get(f"{base}/api/audio-clips", headers=headers, timeout=30).status_code

    # The windows are aligned to the clock's minutes: start well inside one.
    if time.time() % 60 > 45:
        time.sleep(60 - time.time() % 60 + 0.5)
    with ThreadPoolExecutor(threads) as pool:
        return collections.Counter(pool.map(one, range(total)))


def test_four_gunicorn_workers_on_redis_hold_the_limit(app, base_config, tmp_path):  # app: the bucket exists
    _redis_or_fail()
    limit = 40
    settings = _production(base_config, RATELIMIT_DEFAULT=f"{limit} per minute", RATELIMIT_STORAGE_URI=REDIS_URL)
    log_path = tmp_path / "gunicorn.log"
    with (
        log_path.open("wb") as log,
        gunicorn_serving(settings, log, GUNICORN_WORKERS="4", GUNICORN_THREADS="2") as (
            base,
            _,
        ),
    ):
        statuses = _hammer(base, f"rl-owner-{uuid.uuid4().hex}", 2 * limit)
    assert set(statuses) <= {200, 429}, statuses
    assert abs(statuses[200] - limit) <= limit // 10, statuses  # within 10% (exactly the limit with Redis)
    assert WARNING not in log_path.read_text(errors="replace")


def test_four_gunicorn_workers_on_memory_counters_say_so(app, base_config, tmp_path):
    settings = _production(base_config, RATELIMIT_DEFAULT="40 per minute")
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log, gunicorn_serving(settings, log, GUNICORN_WORKERS="4", GUNICORN_THREADS="2"):
        deadline = time.monotonic() + 30
        while log_path.read_text(errors="replace").count(WARNING) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
    text = log_path.read_text(errors="replace")
    assert WARNING in text and "4 workers" in text, text[-2000:]
