"""Multipart on the browser page (/app), in Debian's Chromium: the server's threshold decides.

The page's bundle is the committed esbuild build of web/uppy (pinned package-lock.json). The
app here sends clips of at least 16 MiB in parts of 5 MiB (``MULTIPART_THRESHOLD_BYTES``,
``MULTIPART_PART_SIZE_BYTES``); the page never asks for multipart itself. A 40 MiB real WAV
goes up in 9 parts straight to moto's server (or the strict store, STRICT_S3_ENDPOINT_URL,
see test_multipart.py); the network is cut for one part PUT (playwright's route abort) and
Uppy must retry it; a paused upload survives a page reload and resumes from the parts the
store holds.
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
from testkit.paths import FIXTURES
from testkit.servers import LiveServer
from tests.helpers import IS_STRICT, PART, build_multipart_app
from tests.pages.browserpage import AppPage, api_clip, bucket_cors, launch, playwright  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e
MIB = 1024 * 1024
SIZE = 40 * MIB  # at least: a whole number of the source's frames
#: The per-file pause/resume button of the Dashboard (its title says what a click does).
PAUSE = "button.uppy-Dashboard-Item-progressIndicator[title='Pause upload']"
RESUME = "button.uppy-Dashboard-Item-progressIndicator[title='Resume upload']"


@pytest.fixture(scope="module")
def mp_app(app, base_config):
    """Parts of 5 MiB from 16 MiB on; on the strict store when STRICT_S3_ENDPOINT_URL is set."""
    return build_multipart_app(base_config, MULTIPART_THRESHOLD_BYTES=str(16 * MIB))


@pytest.fixture(scope="module")
def mp_server(mp_app):
    server = LiveServer(mp_app)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    path = tmp_path_factory.mktemp("uppy") / "lecture.wav"
    path.write_bytes(build_long_wav(FIXTURES / "note.wav", SIZE))
    return path


@pytest.fixture
def chromium(playwright, bucket_cors, mp_app, mp_server):  # noqa: F811
    rules = required_cors_rules([mp_server.url])
    if IS_STRICT:
        services_of(mp_app).storage.put_cors_rules(rules)
    else:
        bucket_cors(rules)
    browser = launch(playwright)
    yield browser
    browser.close()


def part_number(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get("partNumber")
    return int(values[0]) if values else None


def parts_of(path: Any) -> int:
    return -(-path.stat().st_size // PART)


def part_puts(page: AppPage) -> list[int]:
    return [n for r in page.puts if (n := part_number(r.url))]


def played_back(server: LiveServer, token: str, clip_id: str) -> bytes:
    headers = {"Authorization": f"Bearer {token}"}
    url = requests.get(f"{server.url}/api/audio-clips/{clip_id}/playback", headers=headers, timeout=30).json()["url"]
    return requests.get(url, timeout=60).content


def test_a_40_mib_file_goes_up_in_parts_and_a_cut_part_is_retried(chromium, mp_server, make_token, lecture):
    token = make_token("uppy-user")
    page = AppPage(chromium, mp_server.url, token)
    cut: list[str] = []

    def cut_part_two_once(route: Any) -> None:
        if part_number(route.request.url) == 2 and not cut:
            cut.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.page.route("**/*partNumber=*", cut_part_two_once)
    page.add(lecture)
    page.upload()
    status = page.wait_status("lecture.wav", "ready", "rejected", "failed", timeout=120_000)
    assert status == "ready", page.text("#clips")
    assert cut, "the part PUT was never cut"
    assert sorted(part_puts(page)) == sorted([*range(1, parts_of(lecture) + 1), 2])  # part 2 sent again after the cut
    clip_id = page.clip_id("lecture.wav")
    clip = api_clip(mp_server.url, token, clip_id)
    assert clip["status"] == "ready" and clip["stored_bytes"] == lecture.stat().st_size
    assert played_back(mp_server, token, clip_id) == lecture.read_bytes()
    # The one console error is the browser reporting the cut PUT; nothing else went wrong.
    assert page.problems == ["console: Failed to load resource: net::ERR_INTERNET_DISCONNECTED (" + cut[0] + ")"]


def test_a_paused_upload_resumes_after_a_reload_from_the_stored_parts(chromium, mp_server, make_token, lecture):
    token = make_token("uppy-user")
    page = AppPage(chromium, mp_server.url, token)
    held = threading.Event()

    def hold_part_three(route: Any) -> None:
        if part_number(route.request.url) == 3:
            held.set()  # never answered: the PUT is in flight when the user pauses
        else:
            route.continue_()

    page.page.route("**/*partNumber=*", hold_part_three)
    page.add(lecture)
    page.upload()
    for _ in range(600):  # playwright runs the route handler only while the page is being driven
        if held.is_set():
            break
        page.page.wait_for_timeout(100)
    assert held.is_set(), "part 3 was never sent"
    page.page.click(PAUSE)
    page.page.wait_for_selector(RESUME)
    clip_id = page.clip_id("lecture.wav")
    assert api_clip(mp_server.url, token, clip_id)["status"] == "pending"
    stored = requests.get(
        f"{mp_server.url}/api/audio-clips/{clip_id}/multipart/parts",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert [p["part_number"] for p in stored["parts"]] == [1, 2]

    page.page.unroute("**/*partNumber=*")
    page.requests.clear()
    page.open(reload=True)  # a reload: Uppy's state is gone, localStorage is not
    page.add(lecture)
    page.upload()
    status = page.wait_status("lecture.wav", "ready", "rejected", "failed", timeout=120_000)
    assert status == "ready", page.text("#clips")
    assert page.clip_id("lecture.wav") == clip_id  # the same clip, resumed
    assert sorted(part_puts(page)) == list(range(3, parts_of(lecture) + 1))  # parts 1 and 2 were listed as stored
    assert played_back(mp_server, token, clip_id) == lecture.read_bytes()
    assert page.problems == []
