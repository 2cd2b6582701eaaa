"""The demo page (``/demo``) in real headless Chromium, end to end.

The app on loopback (``live_server``), moto's threaded server as the store, and Debian's
Chromium driven by Python playwright: the page computes the SHA-256 with WebCrypto,
creates the clip, PUTs the real file cross-origin to the bucket (so the bucket's CORS
rules are exercised, preflight included), completes, and plays the clip in ``<audio>``.
Note that moto's server, unlike S3, allows every origin while a bucket has NO rules; once
it has rules it applies them (a preflight from an origin they do not list gets a 403).

CI needs ``apt-get install -y chromium`` and ``pip install playwright`` (playwright's own
browser download is never used: the system Chromium is launched by path). A missing
Chromium or playwright fails these tests (reported as errors of the fixture, with the
command to run): a skipped browser test would hide a broken page.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from advanced_notes.api.context import services_of
from advanced_notes.domain.bucket_cors import required_cors_rules
from testkit.sigv4 import signature_matches

from .conftest import ACCESS_KEY, BUCKET, REGION, SECRET_KEY

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
#: Headless, and nothing that reaches for the network on its own (the machine is offline).
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Chromium's fake microphone (a beep) and an auto-accepted permission prompt.
FAKE_MICROPHONE_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
#: The README's screenshot is this test's. A run writes it to a temporary folder (a test run
#: must not dirty the work tree); DEMO_SCREENSHOT=docs/demo.png refreshes the committed one.
SCREENSHOT_ENV = "DEMO_SCREENSHOT"
#: Milliseconds any one step of the page may take (a complete parses the audio: well under 1 s here).
STEP_TIMEOUT_MS = 30_000
#: How far the browser's idea of the duration may be from the manifest's (container rounding).
DURATION_TOLERANCE_S = 0.3

# Resolves when the page has finished: the clip is ready, or the error box is showing.
FINISHED_JS = """() => document.getElementById('clip-status').textContent === 'ready'
                      || !document.getElementById('error').hidden"""
# Resolves once <audio> has loaded metadata (readyState >= HAVE_METADATA), or it or the page failed.
METADATA_JS = """() => { const a = document.getElementById('player');
                         return a.readyState >= 1 || a.error !== null || !document.getElementById('error').hidden; }"""


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """A playwright driver, or a clear failure naming what CI must install."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it (apt-get install -y chromium) "
            "or point CHROMIUM_PATH at a Chromium binary."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install playwright (no browser download is needed).")
    with sync_playwright() as driver:
        yield driver


def launch(playwright: Any, extra_args: Sequence[str] = ()) -> Any:
    """Launch the system Chromium headless with :data:`LAUNCH_ARGS` (plus ``extra_args``)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[*LAUNCH_ARGS, *extra_args])


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    """The system Chromium, once for the module's file uploads."""
    chromium = launch(playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def bucket_cors(app, s3_endpoint) -> Iterator[Callable[[list[dict] | None], None]]:
    """A setter of the bucket's CORS rules; the previous rules (or none) come back after.

    The session shares one bucket, and other tests may inspect its CORS rules.
    """
    storage = services_of(app).storage
    before = storage.get_cors_rules()

    def set_rules(rules: list[dict] | None) -> None:
        if rules is not None:
            storage.put_cors_rules(rules)
        else:  # S3Storage has no delete (the app never needs one): boto3 directly.
            boto3.client(
                "s3",
                endpoint_url=s3_endpoint,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            ).delete_bucket_cors(Bucket=BUCKET)

    yield set_rules
    set_rules(before)


@pytest.fixture
def page_origin_cors(bucket_cors, live_server) -> None:
    """The bucket allows the demo page's origin (the live server's), as `advanced-notes dev` sets up."""
    bucket_cors(required_cors_rules([live_server.url]))


class DemoPage:
    """The demo page in one fresh browser context, recording what went wrong in it."""

    def __init__(self, browser: Any, base_url: str, token: str):
        self.context = browser.new_context(viewport={"width": 900, "height": 1100})
        self.page = self.context.new_page()
        self.problems: list[str] = []  # uncaught exceptions and console errors
        self.puts: list[Any] = []  # the browser's PUTs to the store
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on(
            "console",
            lambda msg: (
                msg.type == "error" and self.problems.append(f"console: {msg.text} ({msg.location.get('url')})")
            ),
        )
        self.page.on("request", lambda req: req.method == "PUT" and self.puts.append(req))
        self.page.set_default_timeout(STEP_TIMEOUT_MS)
        # The fragment carries the token, as the link `advanced-notes dev` prints.
        self.page.goto(f"{base_url}/demo#token={token}")

    def text(self, selector: str) -> str:
        """The text content of ``selector``."""
        return self.page.text_content(selector) or ""

    def upload(self) -> None:
        """Click Upload and wait until the clip is ready; fail with the page's own error message."""
        self.page.click("#upload")
        self.page.wait_for_function(FINISHED_JS)
        assert self.page.is_hidden("#error"), f"the page shows an error: {self.text('#error')}"
        assert self.text("#clip-status") == "ready"

    def audio_metadata(self) -> dict[str, Any]:
        """Wait for the <audio> element's metadata; its duration (s), readyState and error code."""
        self.page.wait_for_function(METADATA_JS)
        assert self.page.is_hidden("#error"), f"the page shows an error: {self.text('#error')}"
        return self.page.evaluate("""() => { const a = document.getElementById('player');
            return {duration: a.duration, readyState: a.readyState, error: a.error && a.error.code}; }""")

    def close(self) -> None:
        self.context.close()


def test_demo_page_uploads_a_file_and_plays_it(browser, live_server, make_token, audio, page_origin_cors, tmp_path):
    f = audio["note.ogg"]  # Ogg Opus: open codecs, which Debian's Chromium always has
    token = make_token("browser-user")
    demo = DemoPage(browser, live_server.url, token)
    try:
        page = demo.page
        assert page.input_value("#token") == token
        page.set_input_files("#file", str(f.path))
        page.fill("#note-id", "browser-note")
        assert "Selected note.ogg" in demo.text("#selection")
        demo.upload()

        # The page hashed the file with WebCrypto, and the upload reached 100 %.
        assert demo.text("#step-checksum") == f.sha256_base64
        assert page.eval_on_selector("#put-progress", "p => p.value") == 100

        # The browser PUT exactly the signed headers (moto checks no signature: we do).
        [put] = demo.puts
        sent = put.all_headers()
        assert sent["content-type"] == "audio/ogg"
        assert sent["x-amz-checksum-sha256"] == f.sha256_base64
        signed = {name: sent[name] for name in ("content-type", "x-amz-checksum-sha256")}
        assert signature_matches(put.url, "PUT", {**signed, "content-length": str(f.size)}, SECRET_KEY)
        assert put.response().status == 200

        metadata = demo.audio_metadata()
        assert metadata["error"] is None, f"<audio> failed with MediaError {metadata['error']}"
        assert abs(metadata["duration"] - f.duration_ms / 1000) <= DURATION_TOLERANCE_S, metadata
        assert page.text_content("#step-playback").startswith("ready to play")

        # The API agrees: the clip is ready, whole, checksummed and measured.
        clip_id = demo.text("#clip-id")
        got = requests.get(
            f"{live_server.url}/api/audio-clips/{clip_id}", timeout=30, headers={"Authorization": f"Bearer {token}"}
        )
        assert got.status_code == 200, got.text
        clip = got.json()["clip"]
        assert clip["status"] == "ready" and clip["note_id"] == "browser-note"
        assert clip["mime_type"] == "audio/ogg" and clip["stored_bytes"] == f.size
        assert clip["checksum_sha256"] == f.sha256_base64
        assert abs(clip["measured_duration_ms"] - f.duration_ms) <= DURATION_TOLERANCE_S * 1000

        screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "demo.png")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000
        assert demo.problems == []
    finally:
        demo.close()


def test_demo_page_shows_the_api_error(browser, live_server, make_token, audio, page_origin_cors):
    f = audio["impostor-html.m4a"]  # HTML named .m4a: the PUT succeeds, complete rejects it
    demo = DemoPage(browser, live_server.url, make_token("browser-user"))
    try:
        demo.page.set_input_files("#file", str(f.path))
        demo.page.click("#upload")
        demo.page.wait_for_function(FINISHED_JS)
        error = demo.text("#error")
        assert "422 upload_rejected" in error and '"reason":"not_audio"' in error, error
        assert demo.page.get_attribute("li[data-step=complete]", "data-state") == "failed"
        assert demo.text("#step-put").startswith("stored")
        # The Result panel shows the server's state of the clip, not the last one the page saw.
        demo.page.wait_for_function("() => document.getElementById('clip-status').textContent !== 'pending'")
        assert demo.text("#clip-status") == "rejected"
    finally:
        demo.close()


def test_demo_page_shows_the_store_error_code(browser, live_server, make_token, audio, page_origin_cors):
    # moto accepts almost any PUT, so the store's refusal is played by playwright: S3's XML
    # error shape, with the CORS header a real store adds when a rule matches.
    demo = DemoPage(browser, live_server.url, make_token("browser-user"))
    try:
        demo.page.route(
            "**/audio-clips/*.ogg?*",
            lambda route: route.fulfill(
                status=403,
                content_type="application/xml",
                headers={"Access-Control-Allow-Origin": live_server.url},
                body="<?xml version='1.0' encoding='UTF-8'?><Error><Code>SignatureDoesNotMatch</Code>"
                "<Message>The request signature we calculated does not match.</Message></Error>",
            ),
        )
        demo.page.set_input_files("#file", str(audio["note.ogg"].path))
        demo.page.click("#upload")
        demo.page.wait_for_function(FINISHED_JS)
        assert demo.text("#error") == (
            "Store 403 SignatureDoesNotMatch: The request signature we calculated does not match."
        )
        assert demo.page.get_attribute("li[data-step=put]", "data-state") == "failed"
    finally:
        demo.close()


def test_demo_page_explains_a_bucket_cors_that_refuses_its_origin(
    playwright, live_server, make_token, audio, bucket_cors
):
    # Rules for another origin: moto then answers the page's preflight 403 and the browser
    # never sends the PUT. (With no rules at all moto's server allows every origin, unlike
    # S3, so "no rules" would prove nothing here.)
    bucket_cors(required_cors_rules(["http://elsewhere.invalid"]))
    # A browser of its own: the shared one may hold an allowing preflight in its cache (MaxAgeSeconds).
    chromium = launch(playwright)
    demo = DemoPage(chromium, live_server.url, make_token("browser-user"))
    try:
        demo.page.set_input_files("#file", str(audio["note.ogg"].path))
        demo.page.click("#upload")
        demo.page.wait_for_function(FINISHED_JS)
        error = demo.text("#error")
        assert "CORS rules" in error and live_server.url in error, error
        assert demo.page.get_attribute("li[data-step=put]", "data-state") == "failed"
        assert demo.puts and all(put.response() is None for put in demo.puts)
    finally:
        demo.close()
        chromium.close()


def test_demo_page_records_the_microphone_and_uploads(playwright, live_server, make_token, page_origin_cors):
    chromium = launch(playwright, FAKE_MICROPHONE_ARGS)
    token = make_token("browser-user")
    demo = DemoPage(chromium, live_server.url, token)
    try:
        page = demo.page
        page.click("#record")
        page.wait_for_function("() => !document.getElementById('stop').disabled")
        page.wait_for_timeout(1500)  # a second and a half of the fake device's beep
        page.click("#stop")
        page.wait_for_function("() => document.getElementById('selection').textContent.startsWith('Selected')")
        demo.upload()

        clip_id = demo.text("#clip-id")
        clip = requests.get(
            f"{live_server.url}/api/audio-clips/{clip_id}", timeout=30, headers={"Authorization": f"Bearer {token}"}
        ).json()["clip"]
        # MediaRecorder writes WebM (or Ogg) Opus; the API dropped the codecs parameter.
        assert clip["status"] == "ready" and clip["mime_type"] in ("audio/webm", "audio/ogg")
        assert clip["stored_bytes"] > 1000
        # Recorded with a timeslice: streamed WebM (unknown-size Segment, no Duration), measured anyway.
        assert clip["measured_duration_ms"] is not None and clip["measured_duration_ms"] >= 1000, clip
        # A live recording has no duration in its header: the browser may say Infinity.
        metadata = demo.audio_metadata()
        assert metadata["error"] is None and metadata["readyState"] >= 1, metadata
        assert demo.problems == []
    finally:
        demo.close()
        chromium.close()


#: Milliseconds the page may wait for the worker to process a short recording (a loaded machine).
PROCESSING_TIMEOUT_MS = 90_000
#: How far the seekable rendition's <audio>.duration may be from the worker's duration_ms.
SEEKABLE_TOLERANCE_MS = 50
# Resolves to currentTime once a seek to `middle` (seconds) fired `seeked`, or null after 10 s.
SEEK_JS = """(middle) => new Promise((resolve) => {
    const a = document.getElementById('player');
    const timer = setTimeout(() => resolve(null), 10000);
    a.addEventListener('seeked', () => { clearTimeout(timer); resolve(a.currentTime); }, { once: true });
    a.currentTime = middle;
})"""


def test_demo_page_recording_becomes_seekable_once_the_worker_processed_it(playwright, tmp_path):
    """The dev stack (API, S3 emulator, a real Celery worker on the SQLite transport): a
    MediaRecorder WebM, whose duration Chromium cannot tell, plays as the worker's seekable
    rendition with a finite duration, and a seek to its middle lands there."""
    from .test_devstack import start_dev_server

    server = start_dev_server(tmp_path / "stack")
    chromium = launch(playwright, FAKE_MICROPHONE_ARGS)
    demo = DemoPage(chromium, server.api, server.token())
    try:
        page = demo.page
        page.click("#record")
        page.wait_for_function("() => !document.getElementById('stop').disabled")
        page.wait_for_timeout(3000)  # three seconds of the fake device's beep
        page.click("#stop")
        page.wait_for_function("() => document.getElementById('selection').textContent.startsWith('Selected')")
        demo.upload()
        clip_id = demo.text("#clip-id")

        page.wait_for_function(
            "() => ['done', 'failed'].includes(document.getElementById('clip-processing').textContent)",
            timeout=PROCESSING_TIMEOUT_MS,
        )
        assert demo.text("#clip-processing") == "done", demo.text("#step-processing")
        page.wait_for_function(
            """() => { const a = document.getElementById('player');
                       return (document.getElementById('clip-rendition').textContent === 'seekable rendition'
                               && a.readyState >= 1) || a.error !== null; }"""
        )
        clip = requests.get(
            f"{server.api}/api/audio-clips/{clip_id}", timeout=30, headers={"Authorization": f"Bearer {server.token()}"}
        ).json()["clip"]
        processing = clip["processing"]
        assert clip["mime_type"] == "audio/webm" and "seekable" in processing["renditions"], clip
        assert demo.text("#clip-processed-duration") == f"{processing['duration_ms'] / 1000:.2f} s"
        assert demo.text("#clip-loudness").startswith(f"{processing['loudness_lufs']:.1f} LUFS")

        duration = page.evaluate("() => document.getElementById('player').duration")
        assert duration is not None and duration != float("inf"), duration
        assert abs(duration * 1000 - processing["duration_ms"]) <= SEEKABLE_TOLERANCE_MS, (duration, processing)
        middle = duration / 2
        landed = page.evaluate(SEEK_JS, middle)
        assert landed is not None, "no seeked event within 10 s"
        assert abs(landed - middle) <= 0.1, (landed, middle)
        assert page.text_content("#step-playback").startswith("ready to play")
        assert demo.problems == []
    finally:
        demo.close()
        chromium.close()
        server.stop()
