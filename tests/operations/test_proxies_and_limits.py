"""Behind a balancer and under load: preflights, per-client budgets, Retry-After, /metrics cost,
and the request line gunicorn accepts."""

from __future__ import annotations

import uuid
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import event

from advanced_notes.api.context import services_of
from advanced_notes.api.schemas import MAX_NOTE_ID_LENGTH
from advanced_notes.app import create_app
from advanced_notes.domain.errors import RETRY_AFTER_SECONDS
from advanced_notes.settings import ConfigError, load_settings
from tests.helpers import JWT_SECRET, assert_error


def test_garbage_tokens_do_not_turn_a_preflight_into_a_429(base_config):
    app = create_app({**base_config, "RATELIMIT_DEFAULT": "3/minute", "CORS_ORIGINS": "https://app.example"})
    client = app.test_client()
    for _ in range(10):
        client.get("/api/audio-clips", headers={"Authorization": "Bearer garbage"})
    preflight = client.options(
        "/api/audio-clips",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"


def _anonymous_statuses(client, forwarded_for: str, n: int) -> list[int]:
    headers = {"Authorization": "Bearer garbage", "X-Forwarded-For": forwarded_for}
    return [
        client.get("/api/audio-clips", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code
        for _ in range(n)
    ]


def test_trusted_proxies_give_each_client_behind_the_balancer_its_own_budget(base_config):
    behind = create_app({**base_config, "RATELIMIT_DEFAULT": "2/minute", "TRUSTED_PROXIES": "1"}).test_client()
    assert _anonymous_statuses(behind, "203.0.113.7", 3) == [401, 401, 429]
    assert _anonymous_statuses(behind, "203.0.113.8", 1) == [401]  # another client: another budget
    # A client's own X-Forwarded-For entries before the proxy's are not trusted.
    assert _anonymous_statuses(behind, "198.51.100.1, 203.0.113.7", 1) == [429]


def test_without_trusted_proxies_forwarded_headers_are_ignored(base_config):
    direct = create_app({**base_config, "RATELIMIT_DEFAULT": "2/minute"}).test_client()
    assert _anonymous_statuses(direct, "203.0.113.7", 2) == [401, 401]
    assert _anonymous_statuses(direct, "203.0.113.8", 1) == [429]  # spoofing the header gains nothing
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings({"TRUSTED_PROXIES": "-1", "AUTH_JWT_SECRET": JWT_SECRET})


def test_retry_after_only_on_429_and_503_with_the_causes_value(base_config, client, auth):
    ok = client.get("/api/audio-clips", headers=auth)
    missing = client.get(f"/api/audio-clips/{uuid.uuid4()}", headers=auth)
    assert ok.status_code == 200 and "Retry-After" not in ok.headers and "X-RateLimit-Limit" in ok.headers
    assert missing.status_code == 404 and "Retry-After" not in missing.headers
    clip = client.post("/api/audio-clips", json={"mime_type": "audio/ogg", "bytes": 10}, headers=auth).get_json()
    dead = create_app({**base_config, "S3_ENDPOINT_URL": "http://127.0.0.1:9", "S3_CONNECT_TIMEOUT_SECONDS": "1"})
    response = dead.test_client().post(f"/api/audio-clips/{clip['clip']['id']}/complete", headers=auth)
    assert_error(response, 503, "storage_unavailable")
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    limited = create_app({**base_config, "RATELIMIT_DEFAULT": "1/minute"}).test_client()
    limited.get("/api/audio-clips", headers=auth)
    too_many = limited.get("/api/audio-clips", headers=auth)
    assert too_many.status_code == 429 and 0 < int(too_many.headers["Retry-After"]) <= 60


def test_metrics_counts_are_reused_for_a_few_seconds(base_config, client, auth):
    app = create_app({**base_config, "METRICS_CACHE_SECONDS": "5"})
    counts = []

    @event.listens_for(services_of(app).db.engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        if "count(" in statement.lower():
            counts.append(statement)

    scraper = app.test_client()
    try:
        for _ in range(5):
            assert scraper.get("/metrics").status_code == 200
    finally:
        event.remove(services_of(app).db.engine, "before_cursor_execute", count)
    assert len(counts) == 4  # one scrape's four counts (clips, deletions x2, webhooks), reused by the next four


def test_the_longest_valid_request_line_fits_gunicorns_limit():
    """Valid query parameters are bounded so that no valid request meets gunicorn's HTML 400."""
    limit = 4094  # gunicorn's default limit_request_line, which gunicorn.conf.py keeps
    widest = "\U0010ffff" * MAX_NOTE_ID_LENGTH  # 4 UTF-8 bytes each, 12 once percent-encoded
    query = urlencode({"note_id": widest, "status": "rejected", "limit": 100, "cursor": "A" * 512})
    lines = [
        f"GET /api/audio-clips?{query} HTTP/1.1",
        f"GET /api/notes/{quote(widest, safe='')}/audio HTTP/1.1",
    ]
    assert max(len(line) for line in lines) < limit
