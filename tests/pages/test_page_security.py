"""The pages (``/``, ``/app``) and their assets send a Content-Security-Policy, refuse
framing and sniffing and send no Referer; every answer, JSON included, sends nosniff.

Headers are read through the app (moto's server as the store); then real headless Chromium
(tests/pages/test_browser.py's set-up) uploads a clip on the page, processes it and plays it with
its waveform (wavesurfer.js's shadow-root style, allowed by its hash) while a
``securitypolicyviolation`` listener records what the policy blocked: nothing. The same
listener sees the policy block an inline script and an unhashed inline style injected into
the page, so it can fail.
"""

from __future__ import annotations

from typing import Any

import pytest

from advanced_notes.api.context import services_of
from advanced_notes.api.page_headers import WAVEFORM_STYLE_SHA256, page_policy
from advanced_notes.app import create_app
from tests.pages.browserpage import (  # noqa: F401 (fixtures)
    FILE_INPUT,
    FINISHED_JS,
    STEP_TIMEOUT_MS,
    browser,
    bucket_cors,
    page_origin_cors,
    playwright,
    process,
)

PAGES = ["/", "/app", "/app/static/app.js", "/app/static/app.css"]

# Installed before the page's own scripts: every violation the policy reports, in order.
VIOLATIONS_JS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(
    {directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile}));
"""


def directives(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in policy.split(";")) if d}


@pytest.mark.parametrize("path", PAGES)
def test_pages_and_assets_send_the_policy(client, app, path: str):
    response = client.get(path)
    assert response.status_code == 200, path
    origin = services_of(app).storage.public_origin
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"] and policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'", f"'{WAVEFORM_STYLE_SHA256}'"] and policy["object-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'", origin] and policy["media-src"] == ["'self'", "blob:", origin]
    assert policy["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_bucket_origin_is_where_the_presigned_urls_point(base_config, s3_endpoint):
    path_style = services_of(create_app(base_config)).storage
    assert path_style.public_origin == s3_endpoint.rstrip("/")
    virtual = services_of(
        create_app(
            {**base_config, "S3_ADDRESSING_STYLE": "virtual", "S3_PUBLIC_ENDPOINT_URL": "https://s3.example.com"}
        )
    ).storage
    assert virtual.public_origin == f"https://{virtual.bucket}.s3.example.com"
    assert virtual.presign_get("k", "audio/ogg", "k.ogg").url.startswith(virtual.public_origin + "/")
    assert "connect-src 'self' https://" in page_policy(virtual.public_origin)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/api/audio-clips", 200), ("GET", "/api/nope", 404), ("POST", "/api/audio-clips", 422)],
)
def test_every_api_answer_sends_nosniff(client, auth, method: str, path: str, status: int):
    response = client.open(path, method=method, headers=auth, json={} if method == "POST" else None)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers  # the policy is the pages'


def open_page(chromium: Any, url: str) -> tuple[Any, Any, list[str]]:
    context = chromium.new_context()
    context.add_init_script(VIOLATIONS_JS)
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    console: list[str] = []
    page.on("console", lambda m: m.type == "error" and console.append(m.text))
    page.goto(url)
    return context, page, console


def test_no_violation_while_the_page_uploads_processes_and_plays(
    browser,  # noqa: F811 (a fixture)
    app,
    live_server,
    make_token,
    audio,
    page_origin_cors,  # noqa: F811 (a fixture)
):
    context, page, console = open_page(browser, f"{live_server.url}/app#token={make_token('csp-user')}")
    try:
        page.wait_for_function("() => document.getElementById('versions').textContent !== ''")
        page.set_input_files(FILE_INPUT, str(audio["note.ogg"].path))
        page.click(".uppy-StatusBar-actionBtn--upload")
        page.wait_for_function(FINISHED_JS)
        row = page.query_selector("#clips .clip")
        assert row.get_attribute("data-status") == "ready", row.text_content()
        page.wait_for_function("() => document.querySelector('#clips .clip').dataset.processing === 'queued'")
        assert process(app, row.get_attribute("data-clip-id")) == "done"
        page.wait_for_function(
            "() => { const r = document.querySelector('#clips .clip');"
            " return r.dataset.waveform === 'drawn' && r.querySelector('audio').readyState >= 1; }"
        )
        assert page.evaluate("window.__violations") == []
        assert not [c for c in console if "Content Security Policy" in c], console
        # The listener sees what the policy blocks: an injected inline script does not run, and
        # an inline style other than the player's (hashed) one does not apply.
        ran = page.evaluate("""() => { const s = document.createElement('script');
            s.textContent = 'window.__injected = true'; document.body.appendChild(s);
            return window.__injected === true; }""")
        assert ran is False
        page.evaluate("""() => { const s = document.createElement('style');
            s.textContent = 'body { color: rgb(1, 2, 3); }'; document.head.appendChild(s); }""")
        page.wait_for_function("() => window.__violations.length >= 2")
        assert [v["directive"] for v in page.evaluate("window.__violations")] == ["script-src-elem", "style-src-elem"]
        assert page.evaluate("getComputedStyle(document.body).color") != "rgb(1, 2, 3)"
    finally:
        context.close()
