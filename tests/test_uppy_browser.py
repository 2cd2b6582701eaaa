"""Uppy 6 (@uppy/core + @uppy/aws-s3, unchanged) on the /uppy page, in Debian's Chromium.

The page's bundle is the committed esbuild build of web/uppy (pinned package-lock.json).
A long real WAV (three parts of 5 MiB) goes up in parts straight to moto's server; the
network is cut for one part PUT (playwright's route abort) and Uppy must retry; a paused
upload survives a page reload and resumes from the parts the store holds.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from advanced_notes.api.context import services_of
from advanced_notes.domain.bucket_cors import required_cors_rules
from testkit.longaudio import build_long_wav

from .conftest import FIXTURES, LiveServer
from .test_browser import STEP_TIMEOUT_MS, bucket_cors, launch, playwright  # noqa: F401 (fixtures)
from .test_multipart import IS_STRICT, build_multipart_app

pytestmark = pytest.mark.e2e
PART = 5 * 1024 * 1024
READY_JS = "() => document.getElementById('status').textContent === 'ready' || !document.getElementById('error').hidden"


@pytest.fixture(scope="module")
def uppy_app(app, base_config):
    """5 MiB parts; on the strict store (STRICT_S3_ENDPOINT_URL, see test_multipart.py) when set."""
    return build_multipart_app(base_config)


@pytest.fixture(scope="module")
def uppy_server(uppy_app):
    server = LiveServer(uppy_app)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    path = tmp_path_factory.mktemp("uppy") / "lecture.wav"
    path.write_bytes(build_long_wav(FIXTURES / "note.wav", 2 * PART + 2 * 1024 * 1024))
    return path


@pytest.fixture
def chromium(playwright, bucket_cors, uppy_app, uppy_server):  # noqa: F811
    rules = required_cors_rules([uppy_server.url])
    if IS_STRICT:
        services_of(uppy_app).storage.put_cors_rules(rules)
    else:
        bucket_cors(rules)
    browser = launch(playwright)
    yield browser
    browser.close()


def part_number(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get("partNumber")
    return int(values[0]) if values else None


class UppyPage:
    def __init__(self, browser: Any, base: str, token: str):
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(STEP_TIMEOUT_MS)
        self.problems: list[str] = []
        self.part_puts: list[int] = []
        self.page.on("pageerror", lambda exc: self.problems.append(str(exc)))
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.log: list[str] = []
        self.page.on("request", lambda r: self.log.append(f"{r.method} {r.url[:140]}"))
        self.page.on(
            "request", lambda r: r.method == "PUT" and part_number(r.url) and self.part_puts.append(part_number(r.url))
        )
        self.base, self.token = base, token
        self.open()

    def open(self, reload: bool = False) -> None:
        if reload:  # goto() of the same URL with a fragment would stay in the same document
            self.page.reload()
        else:
            self.page.goto(f"{self.base}/uppy#token={self.token}")
        self.page.wait_for_function("() => document.getElementById('uppy-version').textContent !== ''")

    def start(self, path: str) -> None:
        self.page.set_input_files("#file", path)
        self.page.click("#upload")

    def wait_ready(self) -> None:
        try:
            self.page.wait_for_function(READY_JS, timeout=60_000)
        except Exception:
            raise AssertionError(
                f"status={self.text('#status')!r} mode={self.text('#mode')!r} parts={self.text('#parts')!r} "
                f"problems={self.problems} requests={self.log[-12:]}"
            ) from None
        assert self.page.is_hidden("#error"), self.page.text_content("#error")

    def text(self, selector: str) -> str:
        return self.page.text_content(selector) or ""


def clip_of(server: LiveServer, token: str, clip_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(f"{server.url}/api/audio-clips/{clip_id}", headers=headers, timeout=30).json()["clip"]


def played_back(server: LiveServer, token: str, clip_id: str) -> bytes:
    headers = {"Authorization": f"Bearer {token}"}
    url = requests.get(f"{server.url}/api/audio-clips/{clip_id}/playback", headers=headers, timeout=30).json()["url"]
    return requests.get(url, timeout=60).content


def test_uppy_uploads_in_parts_and_retries_a_cut_part(chromium, uppy_server, make_token, lecture):
    token = make_token("uppy-user")
    page = UppyPage(chromium, uppy_server.url, token)
    cut: list[str] = []

    def cut_part_two_once(route: Any) -> None:
        if part_number(route.request.url) == 2 and not cut:
            cut.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.page.route("**/*partNumber=*", cut_part_two_once)
    page.start(str(lecture))
    page.wait_ready()
    assert "Uppy 6.3.1" in page.text("#uppy-version")
    assert cut, "the part PUT was never cut"
    assert sorted(page.part_puts) == [1, 2, 2, 3]  # part 2 sent again after the cut
    clip_id = page.text("#clip-id")
    clip = clip_of(uppy_server, token, clip_id)
    assert clip["status"] == "ready" and clip["stored_bytes"] == lecture.stat().st_size
    assert played_back(uppy_server, token, clip_id) == lecture.read_bytes()
    page.page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    duration = page.page.evaluate("() => document.getElementById('player').duration")
    assert abs(duration * 1000 - clip["measured_duration_ms"]) < 100
    # The one console error is the browser reporting the cut PUT; nothing else went wrong.
    assert page.problems == ["console: Failed to load resource: net::ERR_INTERNET_DISCONNECTED"]


def test_uppy_pauses_reloads_and_resumes_from_the_stored_parts(chromium, uppy_server, make_token, lecture):
    token = make_token("uppy-user")
    page = UppyPage(chromium, uppy_server.url, token)
    held = threading.Event()

    def hold_part_two(route: Any) -> None:
        if part_number(route.request.url) == 2:
            held.set()  # never answered: the PUT is in flight when the user pauses
        else:
            route.continue_()

    page.page.route("**/*partNumber=*", hold_part_two)
    page.start(str(lecture))
    page.page.wait_for_function("() => document.getElementById('parts').textContent.trim() === '1'")
    page.page.wait_for_timeout(200)
    page.page.click("#pause")
    assert page.text("#status") == "paused"
    clip_id = page.text("#clip-id")
    assert clip_of(uppy_server, token, clip_id)["status"] == "pending"

    page.page.unroute("**/*partNumber=*")
    page.part_puts.clear()
    page.open(reload=True)  # a reload: Uppy's state is gone, localStorage is not
    page.start(str(lecture))
    page.wait_ready()
    assert page.text("#mode") == f"resuming clip {clip_id}"
    assert sorted(page.part_puts) == [2, 3]  # part 1 was listed as stored, not sent again
    assert played_back(uppy_server, token, clip_id) == lecture.read_bytes()
    assert page.problems == []
