"""The embedded default: SQLite + moto's S3 server on loopback + the API, in one process.

For trying the API on a fresh machine with no other setup. The emulator keeps its
bucket in memory, so the SQLite file is recreated on each start: rows whose objects
vanished with the last run would be lies.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from werkzeug.serving import run_simple

from advanced_notes.adapters import migrate
from advanced_notes.api.auth import mint_token
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.bucket_cors import required_cors_rules

EMBEDDED_DB = "embedded.sqlite"
#: Written at start so `advanced-notes upload` finds the running server without flags.
CLIENT_FILE = "embedded-client.json"
DEV_SUBJECT = "dev-user"
TOKEN_SECONDS = 24 * 3600


@dataclass(frozen=True)
class EmbeddedOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    s3_port: int = 9000
    subject: str = DEV_SUBJECT


def _command_hint() -> str:
    found = shutil.which("advanced-notes")
    if found:
        return "advanced-notes"
    local = Path(sys.executable).parent / "advanced-notes"
    try:
        return str(local.relative_to(Path.cwd()))
    except ValueError:
        return str(local)


def browser_origins(host: str, port: int) -> list[str]:
    """The origins a browser may show the API under, for the emulator bucket's CORS rules.

    A CORS origin is compared as a string, so a page opened at ``localhost`` is another
    origin than ``127.0.0.1``: on loopback both names are allowed.
    """
    loopback = ("127.0.0.1", "localhost")
    hosts = loopback if host in loopback else (host,)
    return [f"http://{name}:{port}" for name in hosts]


def embedded_config(options: EmbeddedOptions, db_file: Path) -> dict[str, str | None]:
    """The settings of the embedded stack, applied over the environment (None removes a variable).

    Args:
        options: host and ports; db_file: the SQLite file.
    Returns:
        variable name -> value for :func:`~advanced_notes.app.create_app`.
    """
    return {
        "APP_ENV": "dev",
        "S3_KEY_PREFIX": None,
        "DATABASE_URL": f"sqlite:///{db_file}",
        "S3_ENDPOINT_URL": f"http://{options.host}:{options.s3_port}",
        "S3_PUBLIC_ENDPOINT_URL": None,
        "S3_BUCKET": "advanced-notes-dev",
        "S3_ADDRESSING_STYLE": "path",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "embedded",
        "AWS_SECRET_ACCESS_KEY": "embedded-secret",
        # The embedded stack has its own auth: nothing from .env or the shell (a real
        # secret, an issuer or audience meant for a deployment) leaks into it, so the
        # token it prints always works (issue 13 item 10).
        "AUTH_JWKS_URL": None,
        "AUTH_JWT_SECRET": None,
        "AUTH_JWT_ISSUER": None,
        "AUTH_JWT_AUDIENCE": None,
    }


def run_embedded(options: EmbeddedOptions) -> None:
    """Start moto's S3 server, migrate a fresh SQLite database, mint a token, serve the API.

    Blocks until interrupted. Ports are TCP ports on ``options.host`` (loopback).
    """
    from moto.server import ThreadedMotoServer  # dev dependency (extra "embedded")

    # One access log for the API and the emulator: the PUT, HEAD and ranged GETs show.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    s3 = ThreadedMotoServer(ip_address=options.host, port=options.s3_port, verbose=False)
    s3.start()
    instance = Path("instance").resolve()
    instance.mkdir(exist_ok=True)
    db_file = instance / EMBEDDED_DB
    for stale in instance.glob(EMBEDDED_DB + "*"):
        stale.unlink()
    app = create_app(embedded_config(options, db_file))
    services = services_of(app)
    migrate.upgrade(services.db.url)
    services.storage.ensure_bucket()
    # The demo page PUTs from the API's origin straight to the emulator (another port,
    # so another origin): without rules moto answers the CORS preflight 403.
    services.storage.put_cors_rules(required_cors_rules(browser_origins(options.host, options.port)))
    token = mint_token(services.settings, options.subject, TOKEN_SECONDS)
    api = f"http://{options.host}:{options.port}"
    (instance / CLIENT_FILE).write_text(json.dumps({"api": api, "token": token}))
    cmd = _command_hint()
    print(
        f"""
Advanced Notes audio clips: embedded default
  API       {api}   (interactive docs: {api}/api/docs)
  S3        http://{options.host}:{options.s3_port}   bucket {services.storage.bucket} (moto, in memory)
  Database  {services.db.url}  (recreated at each start)

Token for sub={options.subject} (24 h):
  export ADVANCED_NOTES_TOKEN={token}

Browser demo (the token rides in the #fragment, which never reaches a server log):
  {api}/demo#token={token}

Try, in another terminal from this folder:
  {cmd} upload ../shared/fixtures/audio/note.m4a --note-id demo
  curl -s -H "Authorization: Bearer $ADVANCED_NOTES_TOKEN" {api}/api/notes/demo/audio
""",
        flush=True,
    )
    try:
        run_simple(options.host, options.port, app, threaded=True, use_reloader=False)
    finally:
        s3.stop()
