"""Configured URLs never show their credentials: logs, CLI output, start-up lines, errors.

Receivers are real HTTP servers on loopback (one answering 503, one port that refuses
connections, whose error message from requests quotes the URL's path and query).
"""

from __future__ import annotations

import logging
import socket
import uuid

import pytest

from advanced_notes.app import create_app
from advanced_notes.domain.redact import redact_text, redact_url
from advanced_notes.settings import ConfigError, load_settings
from tests.helpers import WEBHOOK_SECRET, Receiver, make_env, run_cli

PASSWORD = "hunter2pw"
TOKEN = "tok3nS3cret"


def with_credentials(url: str) -> str:
    """``url`` with a user, a password and a token in the query, as an operator might configure it."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://hookuser:{PASSWORD}@{rest}?token={TOKEN}&v=2"


def refused_url() -> str:
    """A loopback URL whose port refuses connections (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pass@host/hook?token=abc", "http://***@host/hook?token=***"),
        ("https://host:8443/h?a=1&b=&flag#frag", "https://host:8443/h?a=***&b=***&***#***"),
        (
            "postgresql+psycopg2://app:s3cr3t@db:5432/notes?sslmode=require",
            "postgresql+psycopg2://***@db:5432/notes?sslmode=***",
        ),
        ("redis://:s3cr3t@cache:6379/5", "redis://***@cache:6379/5"),
        (
            "https://sqs.eu-west-1.amazonaws.com/123456789012/events",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/events",
        ),
        ("http://host:notaport/x", "***"),
        # Nothing to hide: the URL comes back as it is (the empty authority of an
        # absolute SQLite path kept: sqlite://abs/path would name another file).
        ("sqlite:////srv/app/instance/embedded.sqlite", "sqlite:////srv/app/instance/embedded.sqlite"),
    ],
)
def test_redact_url(url: str, shown: str):
    assert redact_url(url) == shown


def test_redact_text_masks_every_form_of_the_secrets():
    url = "http://u:p%40ss@host/hook?token=a%2Fb&x=y"
    text = f"failed: {url}; Max retries exceeded with url: /hook?token=a%2Fb&x=y (token a/b, pw p@ss)"
    redacted = redact_text(text, [url])
    for secret in ("p%40ss", "p@ss", "a%2Fb", "a/b"):
        assert secret not in redacted
    assert "http://***@host/hook?token=***&x=***" in redacted


def test_webhook_logs_and_listing_show_no_credentials(base_config, make_token, audio, caplog):
    failing = Receiver(fail_first=100)
    urls = [with_credentials(failing.url), with_credentials(refused_url())]
    api, app, server = make_env(base_config, make_token, urls, WEBHOOK_GIVE_UP_SECONDS="60")
    try:
        api.upload(audio["note.ogg"])
        with caplog.at_level(logging.WARNING, logger="advanced_notes"):
            delivered = run_cli(app, ["webhooks", "deliver"])
        assert "failed 2" in delivered.output, delivered.output
        listed = run_cli(app, ["webhooks", "list", "--failed"])
        assert listed.output.count("to=http://***@127.0.0.1:") == 2, listed.output
        assert "?token=***&v=***" in listed.output
        assert "ConnectionError" in listed.output  # the error is still there, minus the secrets
        warnings = [r.getMessage() for r in caplog.records if "webhook" in r.getMessage()]
        assert len(warnings) == 2, warnings
        for text in [listed.output, delivered.output, *warnings]:
            assert PASSWORD not in text and TOKEN not in text and "hookuser" not in text, text
    finally:
        server.stop()
        failing.stop()


def test_configuration_errors_and_startup_lines_show_no_credentials(base_config, caplog):
    with pytest.raises(ConfigError) as bad:
        load_settings({"WEBHOOK_URLS": f"ftp://u:{PASSWORD}@host/x?token={TOKEN}", "WEBHOOK_SECRET": WEBHOOK_SECRET})
    assert PASSWORD not in str(bad.value) and TOKEN not in str(bad.value)
    assert "ftp://***@host/x?token=***" in str(bad.value)

    jwks = f"https://idp:{PASSWORD}@idp.example/jwks?key={TOKEN}"
    with caplog.at_level(logging.INFO, logger="advanced_notes"):
        create_app(
            {
                **base_config,
                "AUTH_JWKS_URL": jwks,
                "AUTH_JWT_AUDIENCE": "api",
                "S3_KEY_PREFIX": f"r-{uuid.uuid4().hex[:6]}",
            }
        )
    started = [r.getMessage() for r in caplog.records if "app created" in r.getMessage()]
    assert started and "JWKS https://***@idp.example/jwks?key=***" in started[-1]
    assert PASSWORD not in started[-1] and TOKEN not in started[-1]


def test_storage_check_shows_no_endpoint_credentials(base_config):
    from advanced_notes.api.context import services_of
    from advanced_notes.tools.doctor import StorageDoctor

    endpoint = base_config["S3_ENDPOINT_URL"]
    scheme, rest = endpoint.split("://", 1)
    app = create_app({**base_config, "S3_PUBLIC_ENDPOINT_URL": f"{scheme}://u:{PASSWORD}@{rest}/?sig={TOKEN}"})
    services = services_of(app)
    first = next(StorageDoctor(services.storage, services.settings).run())
    assert first.check == "settings"
    assert PASSWORD not in first.detail and TOKEN not in first.detail, first.detail
