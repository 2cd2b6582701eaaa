"""The browser page (``/app``: Uppy Dashboard + Audio + AWS S3, wavesurfer.js) in real headless Chromium.

The app on loopback (``live_server``), moto's threaded server as the store, and Debian's
Chromium driven by Python playwright: files go in through the Dashboard's own file input, the
browser PUTs them cross-origin to the bucket (the bucket's CORS rules are exercised, preflight
included), and each clip's row follows it through verification and processing to a waveform
player. Processing runs in-process: the test calls the service's runner with the real engine
(PyAV) once the clip is ready, as a worker would (tests/processing/test_processing.py does the same);
the last test runs the dev stack instead, with its real Celery worker.
Note that moto's server, unlike S3, allows every origin while a bucket has NO rules; once it
has rules it applies them.

The driver and fixtures are in tests/browserpage.py (what CI must install is said there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from advanced_notes.api.context import services_of
from advanced_notes.domain.bucket_cors import required_cors_rules
from testkit.sigv4 import signature_matches
from tests.helpers import SECRET_KEY
from tests.pages.browserpage import (  # noqa: F401 (fixtures)
    DURATION_TOLERANCE_S,
    FAKE_MICROPHONE_ARGS,
    PROCESSING_TIMEOUT_MS,
    SCREENSHOT_ENV,
    AppPage,
    api_clip,
    browser,
    bucket_cors,
    launch,
    page_origin_cors,
    playwright,
    process,
)

pytestmark = pytest.mark.e2e


def test_a_small_file_goes_up_in_one_put_is_processed_and_plays_with_its_waveform(
    browser,  # noqa: F811
    app,
    live_server,
    make_token,
    audio,
    page_origin_cors,  # noqa: F811
    tmp_path,
):
    f = audio["note.ogg"]  # Ogg Opus: open codecs, which Debian's Chromium always has
    token = make_token("browser-user")
    page = AppPage(browser, live_server.url, token)
    try:
        assert page.page.input_value("#token") == token
        assert "Uppy 6.3.1" in page.text("#versions") and "Dashboard 6.0.3" in page.text("#versions")
        page.add(f.path)
        page.upload()
        assert page.wait_status("note.ogg", "ready", "rejected", "failed") == "ready", page.text("#clips")
        clip_id = page.clip_id("note.ogg")

        # One PUT of the whole file, with exactly the headers the server signed (we check SigV4).
        [put] = page.puts
        assert "partNumber" not in put.url
        sent = put.all_headers()
        assert sent["content-type"] == "audio/ogg"
        assert signature_matches(
            put.url, "PUT", {"content-type": "audio/ogg", "content-length": str(f.size)}, SECRET_KEY
        )
        assert put.response().status == 200

        clip = api_clip(live_server.url, token, clip_id)
        assert clip["status"] == "ready" and clip["stored_bytes"] == f.size and clip["mime_type"] == "audio/ogg"
        row = page.row("note.ogg")
        page.page.wait_for_function("(row) => document.querySelector(row).dataset.processing === 'queued'", arg=row)
        assert process(app, clip_id) == "done"  # the worker's step, in-process
        metadata = page.wait_drawn("note.ogg")
        processing = api_clip(live_server.url, token, clip_id)["processing"]
        assert (
            metadata["error"] is None
            and abs(metadata["duration"] - processing["duration_ms"] / 1000) <= DURATION_TOLERANCE_S
        )
        assert page.text(f"{row} [data-part=rendition]") == "universal rendition"
        assert page.text(f"{row} [data-part=duration]") == f"{processing['duration_ms'] / 1000:.2f} s"

        # The waveform came from the peaks: the page asked the API for them and fetched the
        # peaks object, and never fetched the audio itself (only <audio>'s media requests).
        peaks_calls = [r for r in page.requests if r.url.endswith(f"/api/audio-clips/{clip_id}/peaks")]
        assert len(peaks_calls) == 1
        bucket = services_of(app).storage.public_origin
        assert metadata["src"].startswith(f"{bucket}/"), metadata  # the player streams the presigned URL
        gets = [r for r in page.requests if r.method == "GET" and r.url.startswith(f"{bucket}/")]
        fetched = [r for r in gets if r.resource_type != "media"]
        assert [r.url.split("?")[0].rsplit("/", 1)[1] for r in fetched] == ["peaks.json"], [r.url for r in gets]
        assert fetched[0].response().status == 200
        assert [r for r in gets if r.resource_type == "media"]  # <audio> asks for what it plays
        assert "rendition=universal" in " ".join(r.url for r in page.requests if "/playback" in r.url)

        # A working seek bar: a click at the waveform's middle moves the player there.
        box = page.page.locator(f"{row} [data-part=waveform]").bounding_box()
        page.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.page.wait_for_function(
            "(row) => Math.abs(document.querySelector(row).querySelector('audio').currentTime - "
            "document.querySelector(row).querySelector('audio').duration / 2) < 0.25",
            arg=row,
        )

        screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "demo.png")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000
        assert page.problems == []
    finally:
        page.close()


def test_an_impostor_is_shown_as_a_clear_rejection(browser, live_server, make_token, audio, page_origin_cors):  # noqa: F811
    f = audio["impostor-html.m4a"]  # HTML named .m4a: the PUT succeeds, complete rejects it
    token = make_token("browser-user")
    page = AppPage(browser, live_server.url, token)
    try:
        page.add(f.path)
        page.upload()
        assert page.wait_status(f.path.name, "ready", "rejected", "failed") == "rejected"
        row = page.row(f.path.name)
        error = page.text(f"{row} [data-part=error]")
        assert error.startswith("Rejected by the server (not_audio): 422 upload_rejected"), error
        assert page.page.get_attribute(f"{row} [data-part=error]", "role") == "alert"
        assert api_clip(live_server.url, token, page.clip_id(f.path.name))["status"] == "rejected"
        # Uppy says so too, in its own notification.
        page.page.wait_for_selector(".uppy-Informer p:has-text('upload_rejected')")
    finally:
        page.close()


def test_a_store_refusal_is_shown_in_its_words_and_a_retry_finishes(
    browser,  # noqa: F811
    live_server,
    make_token,
    audio,
    page_origin_cors,  # noqa: F811
):
    # moto accepts almost any PUT, so the store's refusal is played by playwright: S3's XML
    # error shape, with the CORS header a real store adds when a rule matches; once.
    refused: list[str] = []

    def refuse_once(route: Any) -> None:
        if refused:
            route.continue_()
            return
        refused.append(route.request.url)
        route.fulfill(
            status=403,
            content_type="application/xml",
            headers={"Access-Control-Allow-Origin": live_server.url},
            body="<?xml version='1.0' encoding='UTF-8'?><Error><Code>SignatureDoesNotMatch</Code>"
            "<Message>The request signature we calculated does not match.</Message></Error>",
        )

    token = make_token("browser-user")
    page = AppPage(browser, live_server.url, token)
    try:
        page.page.route("**/audio-clips/*.ogg?*", refuse_once)
        page.add(audio["note.ogg"].path)
        page.upload()
        assert page.wait_status("note.ogg", "ready", "rejected", "failed") == "failed"
        assert page.text(f"{page.row('note.ogg')} [data-part=error]") == (
            "Store 403 SignatureDoesNotMatch: The request signature we calculated does not match."
            "; retry from the list above"
        )
        page.page.click("button.uppy-StatusBar-actionBtn--retry")  # the Dashboard's Retry
        assert page.wait_status("note.ogg", "ready", "rejected") == "ready"  # no longer "failed"
        assert page.page.is_hidden(f"{page.row('note.ogg')} [data-part=error]")
        assert api_clip(live_server.url, token, page.clip_id("note.ogg"))["stored_bytes"] == audio["note.ogg"].size
        assert len(refused) == 1 and len(page.puts) == 2  # the same clip, PUT again
    finally:
        page.close()


def test_a_bucket_cors_that_refuses_the_page_is_explained(playwright, live_server, make_token, audio, bucket_cors):  # noqa: F811
    # Rules for another origin: moto then answers the page's preflight 403 and the browser
    # never sends the PUT. (With no rules at all moto's server allows every origin, unlike
    # S3, so "no rules" would prove nothing here.)
    bucket_cors(required_cors_rules(["http://elsewhere.invalid"]))
    # A browser of its own: the shared one may hold an allowing preflight in its cache (MaxAgeSeconds).
    chromium = launch(playwright)
    page = AppPage(chromium, live_server.url, make_token("browser-user"))
    try:
        page.add(audio["note.ogg"].path)
        page.upload()
        assert page.wait_status("note.ogg", "ready", "rejected", "failed") == "failed"
        error = page.text(f"{page.row('note.ogg')} [data-part=error]")
        assert "CORS rules" in error and live_server.url in error, error
        assert page.puts and all(put.response() is None for put in page.puts)
    finally:
        page.close()
        chromium.close()


def test_a_microphone_recording_goes_up_and_plays_seekable_with_its_waveform(
    playwright,  # noqa: F811
    app,
    live_server,
    make_token,
    page_origin_cors,  # noqa: F811
):
    chromium = launch(playwright, FAKE_MICROPHONE_ARGS)
    token = make_token("browser-user")
    page = AppPage(chromium, live_server.url, token)
    try:
        p = page.page
        page.record(3)  # three seconds of the fake device's beep
        page.upload()
        name = p.text_content("#clips .clip [data-part=name]", timeout=60_000) or ""
        assert page.wait_status(name, "ready", "rejected", "failed") == "ready", page.text("#clips")
        clip = api_clip(live_server.url, token, page.clip_id(name))
        # MediaRecorder writes WebM (or Ogg) Opus; the API dropped the codecs parameter.
        assert clip["mime_type"] in ("audio/webm", "audio/ogg") and clip["stored_bytes"] > 1000
        # Streamed WebM (unknown-size Segment, no Duration), measured anyway.
        assert clip["measured_duration_ms"] is not None and clip["measured_duration_ms"] >= 2000, clip

        # Chromium cannot tell a MediaRecorder WebM's duration; the seekable rendition has it.
        assert process(app, clip["id"]) == "done"
        metadata = page.wait_drawn(name)
        processing = api_clip(live_server.url, token, clip["id"])["processing"]
        row = page.row(name)
        assert page.text(f"{row} [data-part=rendition]") == "seekable rendition", processing
        assert metadata["duration"] not in (None, float("inf"))
        assert abs(metadata["duration"] * 1000 - processing["duration_ms"]) <= 50, (metadata, processing)
        box = p.locator(f"{row} [data-part=waveform]").bounding_box()
        p.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        p.wait_for_function(
            "(row) => { const a = document.querySelector(row).querySelector('audio');"
            " return Math.abs(a.currentTime - a.duration / 2) < 0.25; }",
            arg=row,
        )
        assert page.problems == []
    finally:
        page.close()
        chromium.close()


def test_home_links_the_page_and_the_docs_and_old_addresses_redirect(client):
    home = client.get("/")
    assert home.status_code == 200 and home.mimetype == "text/html"
    body = home.get_data(as_text=True)
    for link in ('href="/app"', 'href="/api/docs"', 'href="/api/openapi.json"'):
        assert link in body
    for old in ("/demo", "/uppy"):
        moved = client.get(old)
        assert moved.status_code == 302 and moved.headers["Location"] == "/app"
    assert client.get("/app").status_code == 200


def test_the_dev_stack_worker_makes_a_recording_seekable_on_the_page(playwright, tmp_path):  # noqa: F811
    """The dev stack (API, S3 emulator, a real Celery worker on the SQLite transport): a
    recording made on the page plays as the worker's seekable rendition with its waveform, a
    finite duration, and a seek to its middle lands there."""
    from tests.helpers import start_dev_server

    server = start_dev_server(tmp_path / "stack")
    chromium = launch(playwright, FAKE_MICROPHONE_ARGS)
    page = AppPage(chromium, server.api, server.token(), path="/demo")  # the old link redirects
    try:
        p = page.page
        assert p.url.startswith(f"{server.api}/app#token=")
        page.record(3)  # three seconds of the fake device's beep
        page.upload()
        name = p.text_content("#clips .clip [data-part=name]", timeout=60_000) or ""
        assert page.wait_status(name, "ready", "rejected", "failed") == "ready", page.text("#clips")
        metadata = page.wait_drawn(name, PROCESSING_TIMEOUT_MS)  # the worker processed it: peaks, then the player
        clip = api_clip(server.api, server.token(), page.clip_id(name))
        processing = clip["processing"]
        assert clip["mime_type"] == "audio/webm" and "seekable" in processing["renditions"], clip
        assert page.text(f"{page.row(name)} [data-part=rendition]") == "seekable rendition"
        assert abs(metadata["duration"] * 1000 - processing["duration_ms"]) <= 50, (metadata, processing)
        middle = metadata["duration"] / 2
        landed = p.evaluate(
            """([row, middle]) => new Promise((resolve) => {
                const a = document.querySelector(row).querySelector('audio');
                const timer = setTimeout(() => resolve(null), 10000);
                a.addEventListener('seeked', () => { clearTimeout(timer); resolve(a.currentTime); }, { once: true });
                a.currentTime = middle; })""",
            [page.row(name), middle],
        )
        assert landed is not None and abs(landed - middle) <= 0.1, (landed, middle)
        assert page.problems == []
    finally:
        page.close()
        chromium.close()
        server.stop()
