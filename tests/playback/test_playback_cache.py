"""Cacheable playback: playback URLs signed at the start of a time window.

Real parts: moto's threaded server is the store, the API is served on loopback (and through
Flask's test client for a second app = a second worker), real audio is uploaded and fetched
back through the URLs. Time is a fake clock given to the storage adapter, never a sleep.
moto accepts any signature and expired URLs, so the URLs are parsed and their signatures
recomputed (testkit/sigv4.py); with ``STRICT_S3_ENDPOINT_URL`` (Ceph radosgw, see
../shared/tools/rgw) the last tests show a store that checks them accepting a URL signed
at its window's start and refusing one past its expiry.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.auth
import pytest
import requests
from botocore.credentials import Credentials

from advanced_notes.adapters.storage import GET_CACHE_ENTRIES, S3Storage, sign_query_at
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.clock import utcnow, window_start
from advanced_notes.settings import ConfigError, load_settings
from testkit.live import Api
from testkit.servers import LiveServer
from testkit.sigv4 import signature_matches, signed_params
from tests.helpers import ACCESS_KEY, REGION, SECRET_KEY, assert_error, create

pytestmark = pytest.mark.e2e

WINDOW, EXPIRES = 300, 900
CACHE_CONTROL = f"private, max-age={EXPIRES - WINDOW}, immutable"
#: Far from the real time: a URL dated by botocore's own clock cannot pass for one of these.
T0 = dt.datetime(2031, 3, 4, 5, 10, tzinfo=dt.UTC)
assert window_start(T0, WINDOW) == T0
KEY = "test/audio-clips/0b5a1c9e-1a44-4b5e-9a57-0d1f0c3b7a10.ogg"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, start: dt.datetime, plus_seconds: float = 0) -> None:
        self.now = start + dt.timedelta(seconds=plus_seconds)


def amz_date(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def iso_z(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def storage(clock: FakeClock | None = None, **env: str) -> S3Storage:
    base = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AUTH_JWT_SECRET": "s" * 40}
    return S3Storage(load_settings({**base, **env}), clock=clock or FakeClock(T0))


def assert_signed_at(url: str, signed_at: dt.datetime, cache_control: str | None = CACHE_CONTROL) -> None:
    """Everything a windowed playback URL must carry, and a valid signature."""
    params = signed_params(url)
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Date"] == amz_date(signed_at)
    assert params["X-Amz-Expires"] == str(EXPIRES)
    assert params["X-Amz-SignedHeaders"] == "host"
    access, day, region, service, terminator = params["X-Amz-Credential"].split("/")
    assert (access, day, region, service, terminator) == (
        ACCESS_KEY,
        signed_at.strftime("%Y%m%d"),
        REGION,
        "s3",
        "aws4_request",
    )
    assert params.get("response-cache-control") == cache_control
    assert signature_matches(url, "GET", {}, SECRET_KEY)


# -- the signer: botocore's, at a chosen time ------------------------------------------------


def test_signer_reproduces_aws_published_example():
    # "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", the
    # example presigned GET of examplebucket/test.txt on 24 May 2013, expiring after 86400 s.
    credentials = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    url = sign_query_at(
        "https://examplebucket.s3.amazonaws.com/test.txt",
        credentials.get_frozen_credentials(),
        "us-east-1",
        86400,
        dt.datetime(2013, 5, 24, tzinfo=dt.UTC),
    )
    assert url == (
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"AWS_REGION": "eu-central-1"},
        {"AWS_REGION": "auto", "S3_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com"},
        {"AWS_REGION": "nyc3", "S3_ENDPOINT_URL": "https://nyc3.digitaloceanspaces.com"},
        {"S3_ENDPOINT_URL": "http://127.0.0.1:9000", "S3_ADDRESSING_STYLE": "path"},
        {"S3_ENDPOINT_URL": "http://minio.internal:9000", "S3_PUBLIC_ENDPOINT_URL": "https://media.example.com"},
    ],
    ids=["aws", "aws-eu", "r2", "spaces", "path", "public-endpoint"],
)
def test_the_url_is_byte_for_byte_botocores_own_presign_at_that_time(env, monkeypatch):
    # What boto3's presigner would sign at t0, had its clock said t0 (patched here, in a
    # test, never in the service): same host, path, query order, encoding and signature.
    s = storage(FakeClock(T0 + dt.timedelta(seconds=42)), **env)
    key, filename = "prod/audio-clips/ü b+c~(1).m4a", 'a "b".m4a'
    ours = s.presign_get(key, "audio/mp4", filename).url
    params = {
        "Bucket": s.bucket,
        "Key": key,
        "ResponseContentType": "audio/mp4",
        "ResponseContentDisposition": f'inline; filename="{filename}"',
        "ResponseCacheControl": CACHE_CONTROL,
    }
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: T0)
    assert ours == s._presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=EXPIRES)


def test_x_amz_date_is_the_window_start_and_what_else_is_signed():
    clock = FakeClock(T0 + dt.timedelta(seconds=123.456))
    get = storage(clock).presign_get(KEY, "audio/ogg", "clip.ogg")
    assert_signed_at(get.url, T0)
    params = signed_params(get.url)
    assert params["response-content-type"] == "audio/ogg"
    assert params["response-content-disposition"] == 'inline; filename="clip.ogg"'
    assert get.expires_at == T0 + dt.timedelta(seconds=EXPIRES)  # truthful: not now + 900 s
    assert get.cache_seconds == WINDOW - 124  # 176.544 s left in the window, whole seconds
    assert get.method == "GET" and get.headers == {}


def test_the_credential_scope_is_the_window_starts_day():
    # A 7 s window does not divide a day: pick a midnight inside a window, so t0 is the day before.
    midnight = dt.datetime(2031, 3, 5, tzinfo=dt.UTC)
    while not 1 <= (midnight - window_start(midnight, 7)).total_seconds() <= 5:
        midnight += dt.timedelta(days=1)
    clock = FakeClock(midnight + dt.timedelta(seconds=1))
    get = storage(clock, S3_PRESIGN_GET_WINDOW_SECONDS="7").presign_get(KEY, "audio/ogg", "clip.ogg")
    start = window_start(clock.now, 7)
    assert start.date() < midnight.date()
    params = signed_params(get.url)
    assert params["X-Amz-Date"] == amz_date(start)
    assert params["X-Amz-Credential"].split("/")[1] == start.strftime("%Y%m%d")
    assert params["response-cache-control"] == f"private, max-age={EXPIRES - 7}, immutable"
    assert signature_matches(get.url, "GET", {}, SECRET_KEY)


def test_window_start_is_epoch_aligned():
    assert window_start(dt.datetime(1970, 1, 1, 0, 4, 59, 999999, tzinfo=dt.UTC), 300) == dt.datetime(
        1970, 1, 1, tzinfo=dt.UTC
    )
    moment = dt.datetime(2031, 3, 4, 5, 14, 59, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert window_start(moment, 300) == dt.datetime(2031, 3, 4, 3, 10, tzinfo=dt.UTC)
    assert window_start(T0, 1) == T0
    with pytest.raises(ValueError):
        window_start(T0, 0)


# -- the in-process cache ----------------------------------------------------------------------


def test_one_window_one_url_and_the_next_window_a_new_one():
    clock = FakeClock(T0)
    s = storage(clock)
    first = s.presign_get(KEY, "audio/ogg", "clip.ogg")
    clock.set(T0, WINDOW - 0.001)
    last = s.presign_get(KEY, "audio/ogg", "clip.ogg")
    assert last.url == first.url and last.expires_at == first.expires_at
    assert (first.cache_seconds, last.cache_seconds) == (WINDOW, 1)  # at least 1
    assert s._signed_gets.cache_info().misses == 1  # signed once

    # Another key, type or filename is another URL, in the same window.
    assert s.presign_get(KEY, "audio/ogg", "other.ogg").url != first.url
    assert s.presign_get(KEY, "audio/mpeg", "clip.ogg").url != first.url

    clock.set(T0, WINDOW)  # the next window: the cached URL is never handed out again
    after = s.presign_get(KEY, "audio/ogg", "clip.ogg")
    assert after.url != first.url
    assert_signed_at(after.url, T0 + dt.timedelta(seconds=WINDOW))
    assert after.expires_at == T0 + dt.timedelta(seconds=WINDOW + EXPIRES)

    clock.set(T0, 10)  # a clock stepped back is its own window again, not a newer URL
    assert s.presign_get(KEY, "audio/ogg", "clip.ogg").url == first.url


def test_two_processes_sign_the_same_bytes():
    clock = FakeClock(T0 + dt.timedelta(seconds=17))
    one, two = storage(clock), storage(FakeClock(T0 + dt.timedelta(seconds=230)))
    assert one.presign_get(KEY, "audio/ogg", "clip.ogg").url == two.presign_get(KEY, "audio/ogg", "clip.ogg").url


def test_a_url_whose_expiry_passed_is_signed_again(monkeypatch):
    # Temporary credentials can end a URL inside its window: expires_at is then theirs, and
    # once it passed, the cache does not hand that URL out again.
    clock = FakeClock(T0)
    s = storage(clock)
    credentials_end = [T0 + dt.timedelta(seconds=100)]
    monkeypatch.setattr(s, "credentials_expire_at", lambda: credentials_end[0])
    first = s.presign_get(KEY, "audio/ogg", "clip.ogg")
    assert first.expires_at == T0 + dt.timedelta(seconds=100)
    clock.set(T0, 99)
    assert s.presign_get(KEY, "audio/ogg", "clip.ogg").cache_seconds == 1  # the answer dies with the URL
    credentials_end[0] = T0 + dt.timedelta(days=1)  # boto3 refreshed them
    clock.set(T0, 100)
    again = s.presign_get(KEY, "audio/ogg", "clip.ogg")
    # Signed again (the same credentials here, so the same URL), with the expiry it now has.
    assert again.expires_at == T0 + dt.timedelta(seconds=EXPIRES) and again.cache_seconds == WINDOW - 100


def test_the_cache_is_bounded():
    assert GET_CACHE_ENTRIES == 4096
    assert storage()._signed_gets.cache_info().maxsize == GET_CACHE_ENTRIES


def test_signing_at_t0_changes_no_other_threads_time():
    # No global clock patch: while threads sign playback URLs at 2031, upload URLs signed by
    # boto3 in other threads carry the real time, and every playback URL is the same.
    s = storage(FakeClock(T0 + dt.timedelta(seconds=5)))
    stop = threading.Event()
    put_dates: list[str] = []

    def sign_puts() -> None:
        while not stop.is_set():
            put_dates.append(signed_params(s.presign_put(KEY, "audio/ogg", 10).url)["X-Amz-Date"])

    putter = threading.Thread(target=sign_puts)
    putter.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            urls = set(pool.map(lambda i: s.presign_get(f"{KEY}.{i % 50}", "audio/ogg", "c.ogg").url, range(2000)))
    finally:
        stop.set()
        putter.join()
    assert len(urls) == 50 and all(signed_params(u)["X-Amz-Date"] == amz_date(T0) for u in urls)
    now = utcnow()
    assert put_dates and all(
        abs((dt.datetime.strptime(d, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC) - now).total_seconds()) < 120
        for d in put_dates
    )


def test_window_zero_signs_at_every_request():
    clock = FakeClock(T0 + dt.timedelta(seconds=7.9))
    s = storage(clock, S3_PRESIGN_GET_WINDOW_SECONDS="0")
    first = s.presign_get(KEY, "audio/ogg", "clip.ogg")
    assert_signed_at(first.url, T0 + dt.timedelta(seconds=7), cache_control=None)
    assert first.expires_at == T0 + dt.timedelta(seconds=7 + EXPIRES) and first.cache_seconds is None
    clock.set(T0, 8.1)
    second = s.presign_get(KEY, "audio/ogg", "clip.ogg")
    assert second.url != first.url and signed_params(second.url)["X-Amz-Date"] == amz_date(T0 + dt.timedelta(seconds=8))
    assert s._signed_gets.cache_info().currsize == 0


# -- settings ------------------------------------------------------------------------------------


def test_window_defaults_and_bounds():
    secret = {"AUTH_JWT_SECRET": "s" * 40}
    assert load_settings(secret).presign_get_window_seconds == 300
    assert load_settings({**secret, "S3_PRESIGN_GET_WINDOW_SECONDS": "0"}).presign_get_window_seconds == 0
    ok = {"S3_PRESIGN_GET_EXPIRES_SECONDS": "604800", "S3_PRESIGN_GET_WINDOW_SECONDS": "604799"}
    assert load_settings({**secret, **ok}).presign_get_window_seconds == 604799
    assert load_settings({**secret, "S3_PRESIGN_GET_EXPIRES_SECONDS": "1", "S3_PRESIGN_GET_WINDOW_SECONDS": "0"})


@pytest.mark.parametrize(
    "env, words",
    [
        ({"S3_PRESIGN_GET_WINDOW_SECONDS": "900"}, "must be less than S3_PRESIGN_GET_EXPIRES_SECONDS (900)"),
        ({"S3_PRESIGN_GET_EXPIRES_SECONDS": "60"}, "must be less than S3_PRESIGN_GET_EXPIRES_SECONDS (60)"),
        ({"S3_PRESIGN_GET_WINDOW_SECONDS": "-1"}, "integer from 0 to 604799 (0 = off)"),
        ({"S3_PRESIGN_GET_WINDOW_SECONDS": "5m"}, "integer from 0 to 604799"),
    ],
)
def test_a_window_not_shorter_than_the_url_is_refused(env, words):
    with pytest.raises(ConfigError) as info:
        load_settings({"AUTH_JWT_SECRET": "s" * 40, **env})
    assert list(info.value.problems) == ["S3_PRESIGN_GET_WINDOW_SECONDS"]
    assert words in info.value.problems["S3_PRESIGN_GET_WINDOW_SECONDS"]


def test_a_bad_get_lifetime_is_not_also_a_bad_window():
    with pytest.raises(ConfigError) as info:
        load_settings({"AUTH_JWT_SECRET": "s" * 40, "S3_PRESIGN_GET_EXPIRES_SECONDS": "0"})
    assert list(info.value.problems) == ["S3_PRESIGN_GET_EXPIRES_SECONDS"]


# -- through the HTTP API --------------------------------------------------------------------------


@pytest.fixture
def clock(app, monkeypatch) -> FakeClock:
    """The session app's storage on a fake clock (restored after the test)."""
    fake = FakeClock(T0)
    monkeypatch.setattr(services_of(app).storage, "clock", fake)
    return fake


@pytest.fixture(scope="module")
def second_worker(app, base_config) -> Iterator[Any]:
    """Another app on the same database and bucket: what a second gunicorn worker is."""
    yield create_app(base_config)


def max_age(response: Any) -> int:
    value = response.headers["Cache-Control"]
    assert value.startswith("private, max-age=") and value.count(",") == 1, value
    return int(value.rsplit("=", 1)[1])


def test_playback_over_http_is_one_url_per_window(api, audio, clock, app, second_worker, make_token, monkeypatch):
    f = audio["note.ogg"]
    clip = api.upload(f, note_id="cache/note")
    paths = (f"/api/audio-clips/{clip['id']}/playback", "/api/notes/cache%2Fnote/audio")

    clock.set(T0, 12.5)
    first = api("GET", paths[0])
    assert first.status_code == 200 and max_age(first) == WINDOW - 13
    assert first.headers["Vary"] == "Authorization"
    body = first.json()
    assert_signed_at(body["url"], T0)
    assert body["expires_at"] == iso_z(T0 + dt.timedelta(seconds=EXPIRES))
    note = api("GET", paths[1])
    assert note.status_code == 200 and max_age(note) == WINDOW - 13
    assert note.json()["playback"] == body and note.json()["clip"]["id"] == clip["id"]

    clock.set(T0, WINDOW - 0.5)  # still the same window: the same bytes, a shorter reuse
    late = api("GET", paths[0])
    assert late.json() == body and max_age(late) == 1

    # A second worker (its own app, storage and cache) hands out the very same URL.
    monkeypatch.setattr(services_of(second_worker).storage, "clock", FakeClock(T0 + dt.timedelta(seconds=200)))
    headers = {"Authorization": f"Bearer {make_token('e2e-user')}"}
    other = second_worker.test_client().get(paths[0], headers=headers)
    assert other.status_code == 200 and other.get_json() == body and max_age(other) == WINDOW - 200
    assert second_worker.test_client().get(paths[1], headers=headers).get_json()["playback"] == body

    # The store serves the audio with the signed Cache-Control (and Range still works).
    got = requests.get(body["url"], timeout=30)
    assert got.status_code == 200 and got.content == f.data
    assert got.headers["Cache-Control"] == CACHE_CONTROL and got.headers["Content-Type"] == f.mime_type
    ranged = requests.get(body["url"], headers={"Range": "bytes=0-99"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == f.data[:100]

    clock.set(T0, WINDOW)  # past the window: a new URL, signed at the next window's start
    after = api("GET", paths[0])
    assert after.json()["url"] != body["url"] and max_age(after) == WINDOW
    assert_signed_at(after.json()["url"], T0 + dt.timedelta(seconds=WINDOW))
    assert after.json()["expires_at"] == iso_z(T0 + dt.timedelta(seconds=WINDOW + EXPIRES))
    assert api("GET", paths[1]).json()["playback"] == after.json()
    assert requests.get(after.json()["url"], timeout=30).content == f.data


def test_error_answers_carry_no_cache_control(client, auth, clock):
    pending = create(client, auth)["clip"]
    for response, status, code in [
        (client.get(f"/api/audio-clips/{pending['id']}/playback", headers=auth), 409, "clip_not_ready"),
        (client.get("/api/audio-clips/00000000-0000-4000-8000-000000000000/playback", headers=auth), 404, "not_found"),
        (client.get("/api/notes/no-such-note/audio", headers=auth), 404, "not_found"),
        (client.get(f"/api/audio-clips/{pending['id']}/playback"), 401, "unauthorized"),
    ]:
        assert_error(response, status, code)
        assert "Cache-Control" not in response.headers


@pytest.fixture(scope="module")
def unwindowed(app, base_config) -> Iterator[tuple[Any, LiveServer]]:
    """The app with S3_PRESIGN_GET_WINDOW_SECONDS=0, served on loopback."""
    application = create_app({**base_config, "S3_PRESIGN_GET_WINDOW_SECONDS": "0"})
    server = LiveServer(application)
    yield application, server
    server.stop()


def test_window_zero_keeps_a_url_per_request(unwindowed, audio, make_token, monkeypatch):
    application, server = unwindowed
    api = Api(server.url, make_token("e2e-user"))
    clip = api.upload(audio["note.ogg"])
    fake = FakeClock(T0 + dt.timedelta(seconds=3.7))
    monkeypatch.setattr(services_of(application).storage, "clock", fake)
    first = api("GET", f"/api/audio-clips/{clip['id']}/playback")
    assert first.status_code == 200 and "Cache-Control" not in first.headers
    assert_signed_at(first.json()["url"], T0 + dt.timedelta(seconds=3), cache_control=None)
    assert first.json()["expires_at"] == iso_z(T0 + dt.timedelta(seconds=3 + EXPIRES))
    fake.set(T0, 4)
    second = api("GET", f"/api/audio-clips/{clip['id']}/playback")
    assert second.json()["url"] != first.json()["url"]
    assert requests.get(second.json()["url"], timeout=30).content == audio["note.ogg"].data


def test_openapi_documents_the_cache_headers(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in ("/api/audio-clips/{clip_id}/playback", "/api/notes/{note_id}/audio"):
        headers = paths[path]["get"]["responses"]["200"]["headers"]
        assert {"Cache-Control", "Vary"} <= set(headers), path
        assert "max-age" in headers["Cache-Control"]["description"]
        assert "headers" not in paths[path]["get"]["responses"]["404"]


# -- against a store that checks signatures and expiry ------------------------------------------

STRICT_ENDPOINT = os.environ.get("STRICT_S3_ENDPOINT_URL")
strict = pytest.mark.skipif(not STRICT_ENDPOINT, reason="needs a strict store (STRICT_S3_ENDPOINT_URL)")


@pytest.fixture(scope="module")
def strict_storage() -> Iterator[S3Storage]:
    """The adapter on the strict store (real clock unless a test sets one), a probe object stored."""
    s = S3Storage(
        load_settings(
            {
                "S3_ENDPOINT_URL": STRICT_ENDPOINT or "",
                "AWS_ACCESS_KEY_ID": os.environ.get("STRICT_S3_ACCESS_KEY", ""),
                "AWS_SECRET_ACCESS_KEY": os.environ.get("STRICT_S3_SECRET_KEY", ""),
                "S3_BUCKET": "advanced-notes-strict",
                "S3_ADDRESSING_STYLE": "path",
                "AUTH_JWT_SECRET": "s" * 40,
            }
        )
    )
    s.ensure_bucket()
    yield s
    s.delete(KEY)


@strict
def test_strict_store_accepts_a_url_signed_at_its_window_start(strict_storage, audio, monkeypatch):
    f = audio["note.ogg"]
    strict_storage.put_object(KEY, f.data, f.mime_type)
    now = utcnow()
    # Signed 500..800 s ago (t0 of a window 500 s back): still inside its 900 s.
    monkeypatch.setattr(strict_storage, "clock", lambda: now - dt.timedelta(seconds=500))
    get = strict_storage.presign_get(KEY, f.mime_type, "clip.ogg")
    signed_at = window_start(now - dt.timedelta(seconds=500), WINDOW)
    assert signed_params(get.url)["X-Amz-Date"] == amz_date(signed_at)
    assert get.expires_at == signed_at + dt.timedelta(seconds=EXPIRES) > now
    got = requests.get(get.url, timeout=30)
    assert got.status_code == 200, got.text
    assert got.content == f.data and got.headers["Cache-Control"] == CACHE_CONTROL
    ranged = requests.get(get.url, headers={"Range": "bytes=0-9"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == f.data[:10]
    # On the real clock too (the window that holds now).
    monkeypatch.setattr(strict_storage, "clock", utcnow)
    assert requests.get(strict_storage.presign_get(KEY, f.mime_type, "clip.ogg").url, timeout=30).status_code == 200


@strict
def test_strict_store_refuses_a_url_past_its_expiry(strict_storage, audio, monkeypatch):
    f = audio["note.ogg"]
    strict_storage.put_object(KEY, f.data, f.mime_type)
    now = utcnow()
    monkeypatch.setattr(strict_storage, "clock", lambda: now - dt.timedelta(seconds=EXPIRES + 60))
    get = strict_storage.presign_get(KEY, f.mime_type, "clip.ogg")
    assert get.expires_at < now
    refused = requests.get(get.url, timeout=30)
    assert refused.status_code == 403 and b"AccessDenied" in refused.content, refused.text
    # ...and a tampered date is a bad signature, not a way to extend it.
    fresh = get.url.replace(signed_params(get.url)["X-Amz-Date"], amz_date(window_start(now, WINDOW)))
    assert requests.get(fresh, timeout=30).status_code == 403
