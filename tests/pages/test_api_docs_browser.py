"""``/api/docs`` in headless Chromium with no network beyond loopback.

Swagger UI used to come from a CDN: offline the page stayed blank. Every request the
page makes to anything but the app is aborted here, as on a plane.
"""

from __future__ import annotations

import pytest

from tests.pages.browserpage import launch, playwright  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e


def test_the_docs_page_renders_every_operation_offline(playwright, live_server):  # noqa: F811
    chromium = launch(playwright)
    context = chromium.new_context()
    elsewhere: list[str] = []

    def offline(route) -> None:
        if route.request.url.startswith(live_server.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        page.goto(f"{live_server.url}/api/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.textContent.trim())")
        for path in ("/api/audio-clips", "/api/audio-clips/{clip_id}/complete", "/api/notes/{note_id}/audio"):
            assert any(p.replace("\u200b", "") == path for p in paths), paths
        assert len(paths) >= 10
        assert elsewhere == [] and problems == []
    finally:
        context.close()
        chromium.close()


def test_only_the_page_assets_are_served(client):
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/api/docs/assets/swagger-ui.css").mimetype == "text/css"
    assert client.get("/api/docs/assets/index.j2").status_code == 404
    assert client.get("/api/docs/assets/..%2Fsetup.cfg").status_code == 404
