"""The browser page's driver for the Chromium tests: the system Chromium through playwright,
the bucket's CORS rules, the page (``/app``) in a fresh context that records its requests and
problems, and the worker's step run in-process with the real engine.

CI needs ``apt-get install -y chromium`` and ``pip install playwright`` (playwright's own
browser download is never used: the system Chromium is launched by path). A missing
Chromium or playwright fails the tests using these fixtures (reported as errors of the
fixture, with the command to run): a skipped browser test would hide a broken page.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from advanced_notes.api.context import services_of
from advanced_notes.domain.bucket_cors import required_cors_rules
from tests.helpers import ACCESS_KEY, BUCKET, REGION, SECRET_KEY

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
#: How far the player's duration may be from the worker's duration_ms (container rounding).
DURATION_TOLERANCE_S = 0.3
#: Milliseconds the dev stack's worker may take to process a short recording (a loaded machine).
PROCESSING_TIMEOUT_MS = 90_000
#: The Dashboard's file input (the first: the other one picks folders).
FILE_INPUT = "input.uppy-Dashboard-input >> nth=0"
#: Resolves once the page's first clip row has finished uploading: ready, rejected or failed.
FINISHED_JS = """() => { const row = document.querySelector('#clips .clip');
    return row !== null && ['ready', 'rejected', 'failed'].includes(row.dataset.status); }"""


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
    """The bucket allows the page's origin (the live server's), as `advanced-notes dev` sets up."""
    bucket_cors(required_cors_rules([live_server.url]))


def process(app: Any, clip_id: str) -> str:
    """Run the clip's processing job in this process with the real engine, as a worker would."""
    from advanced_notes.services.processing_runner import ProcessingRunner
    from advanced_notes.worker.engine import media_engine

    services = services_of(app)
    runner = ProcessingRunner(
        services.db,
        services.storage,
        services.deletions,
        media_engine(services.settings),
        services.settings,
        services.webhooks,
    )
    return runner.run(uuid.UUID(clip_id))


class AppPage:
    """The page in one fresh browser context, recording what went wrong in it and every request."""

    def __init__(self, browser: Any, base_url: str, token: str, path: str = "/app", size=(1000, 900)):
        self.context = browser.new_context(viewport={"width": size[0], "height": size[1]})
        self.page = self.context.new_page()
        self.page.set_default_timeout(STEP_TIMEOUT_MS)
        self.problems: list[str] = []  # uncaught exceptions and console errors
        self.requests: list[Any] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on(
            "console",
            lambda msg: (
                msg.type == "error" and self.problems.append(f"console: {msg.text} ({msg.location.get('url')})")
            ),
        )
        self.page.on("request", lambda request: self.requests.append(request))
        self.base, self.token, self.path = base_url, token, path
        self.open()

    def open(self, reload: bool = False) -> None:
        """Open the page with the token in the fragment (as `advanced-notes dev` links it), or reload it."""
        if reload:  # goto() of the same URL with a fragment would stay in the same document
            self.page.reload()
        else:
            self.page.goto(f"{self.base}{self.path}#token={self.token}")
        self.page.wait_for_function("() => document.getElementById('versions').textContent !== ''")

    @property
    def puts(self) -> list[Any]:
        """The browser's PUTs (to the store)."""
        return [r for r in self.requests if r.method == "PUT"]

    def text(self, selector: str) -> str:
        """The text content of ``selector``."""
        return self.page.text_content(selector) or ""

    def add(self, path: str | Path) -> None:
        """Add a file through the Dashboard's own file input."""
        self.page.set_input_files(FILE_INPUT, str(path))

    def record(self, seconds: float = 3) -> None:
        """Record ``seconds`` from the (fake) microphone in Uppy's Audio tab and add it to the upload."""
        self.page.click(".uppy-DashboardTab-btn:has-text('Audio')")
        self.page.click("button.uppy-Audio-button[title='Begin audio recording']")
        self.page.wait_for_timeout(int(seconds * 1000))
        self.page.click("button.uppy-Audio-button[title='Stop audio recording']")
        self.page.click("button.uppy-Audio-button--submit")

    def upload(self) -> None:
        """Click the Dashboard's upload button."""
        self.page.click(".uppy-StatusBar-actionBtn--upload")

    def row(self, name: str) -> str:
        """A selector for the row of the clip uploaded from the file ``name``."""
        selector = f'#clips .clip[data-name="{name}"]'
        self.page.wait_for_selector(selector, state="attached")
        return selector

    def wait_status(self, name: str, *states: str, timeout: int = 60_000) -> str:
        """Wait until the file's row shows one of ``states``; its status then."""
        row = self.row(name)
        self.page.wait_for_function(
            "([row, states]) => states.includes(document.querySelector(row).dataset.status)",
            arg=[row, list(states)],
            timeout=timeout,
        )
        return self.page.get_attribute(row, "data-status") or ""

    def clip_id(self, name: str) -> str:
        return self.text(f"{self.row(name)} [data-part=id]")

    def wait_drawn(self, name: str, timeout: int = STEP_TIMEOUT_MS) -> dict[str, Any]:
        """Wait for the row's waveform and player metadata; the player's duration and readyState."""
        row = self.row(name)
        self.page.wait_for_function(
            """(row) => { const r = document.querySelector(row); const a = r.querySelector('audio');
                return (r.dataset.waveform === 'drawn' && a.readyState >= 1) || !r.querySelector('.error').hidden; }""",
            arg=row,
            timeout=timeout,
        )
        assert self.page.is_hidden(f"{row} .error"), self.text(f"{row} .error")
        return self.page.evaluate(
            """(row) => { const a = document.querySelector(row).querySelector('audio');
                return {duration: a.duration, readyState: a.readyState,
                        error: a.error && a.error.code, src: a.src}; }""",
            row,
        )

    def close(self) -> None:
        self.context.close()


def api_clip(base: str, token: str, clip_id: str) -> dict[str, Any]:
    got = requests.get(f"{base}/api/audio-clips/{clip_id}", timeout=30, headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200, got.text
    return got.json()["clip"]
