"""The embedded default: SQLite + moto's S3 server on loopback + the API, in one process,
and one Celery worker process beside it that processes the ready clips.

For trying the API on a fresh machine with no other setup. The worker's broker is kombu's
SQLAlchemy transport on a SQLite file of its own (``instance/broker.sqlite``), so nothing
needs installing; it runs the relay too (``worker -B``) and stops with the server
(:mod:`advanced_notes.tools.dev_worker`). The emulator's bucket sends its ObjectCreated
events to an SQS queue of the emulator, which a thread of the server consumes
(:mod:`advanced_notes.tools.dev_events`): an upload whose client never calls complete is
finished within seconds, as ``events consume`` does in production. The emulator keeps its
bucket in memory, so the SQLite file is recreated on each start: rows whose objects
vanished with the last run would be lies. One dev server per folder: it locks
``instance/`` and publishes itself there for the other commands
(:mod:`advanced_notes.tools.discovery`); both ports are bound before any file changes.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from advanced_notes.adapters import migrate
from advanced_notes.adapters.taskqueue import DEV_BROKER_FILENAME
from advanced_notes.api.auth import mint_token
from advanced_notes.api.context import services_of
from advanced_notes.app import create_app
from advanced_notes.domain.bucket_cors import required_cors_rules
from advanced_notes.domain.keys import clips_folder
from advanced_notes.domain.redact import redact_url
from advanced_notes.tools.dev_events import DevEventConsumer
from advanced_notes.tools.dev_worker import BEAT_SCHEDULE, DevWorker
from advanced_notes.tools.discovery import (
    DevStack,
    DiscoveryError,
    StackLock,
    instance_dir,
    remove_stack,
    write_stack,
)

EMBEDDED_DB = "embedded.sqlite"
DEV_SUBJECT = "dev-user"
#: The emulator's queue of the bucket's event notifications (moto's default account).
EVENTS_QUEUE_PATH = "123456789012/advanced-notes-dev-events"
TOKEN_SECONDS = 24 * 3600


class DevStackError(RuntimeError):
    """The dev server cannot start; the message (one line) says why and what to do."""


@dataclass(frozen=True)
class EmbeddedOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    s3_port: int = 9000
    subject: str = DEV_SUBJECT
    #: Start the processing worker (``--no-worker`` turns it off).
    worker: bool = True


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
        options: host and ports; db_file: the SQLite file (the broker's file goes beside it).
    Returns:
        variable name -> value for :func:`~advanced_notes.app.create_app` and the worker.
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
        "S3_EVENTS_QUEUE_URL": f"http://{options.host}:{options.s3_port}/{EVENTS_QUEUE_PATH}",
        # One readable access line per request: the terminal keeps the banner and its token.
        "LOG_FORMAT": "text",
        # The embedded stack has its own auth: nothing from .env or the shell (a real
        # secret, an issuer or audience meant for a deployment) leaks into it, so the
        # token it prints always works.
        "AUTH_JWKS_URL": None,
        "AUTH_JWT_SECRET": None,
        # The public dev secret is chosen here, explicitly, and nowhere else: settings
        # refuse the flag outside dev and away from SQLite + loopback S3.
        "AUTH_USE_DEV_SECRET": "on",
        "AUTH_JWT_ISSUER": None,
        "AUTH_JWT_AUDIENCE": None,
        # The worker's broker: a SQLite file of its own, never a broker from the shell.
        "PROCESSING_BROKER_URL": f"sqla+sqlite:///{db_file.parent / DEV_BROKER_FILENAME}",
        "PROCESSING_ENABLED": "on",
        "PROCESSING_QUEUE": None,
        # Large files go up in parts, as in production: the browser page can pause them and
        # resume after a reload, and the CLI can resume an interrupted upload.
        "MULTIPART_THRESHOLD_BYTES": str(16 * 1024 * 1024),
    }


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without its access line: the app logs each request once itself.

    werkzeug's line repeats the app's, with ANSI colours, and with the full request line:
    query strings included, which is where presigned URLs keep their signatures.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _stop_on_sigterm() -> None:
    # `kill PID` (SIGTERM) then unwinds like Ctrl-C, so the discovery file is removed.
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def run_embedded(options: EmbeddedOptions) -> None:
    """Start moto's S3 server, migrate a fresh SQLite database, mint a token, serve the API.

    Blocks until interrupted (Ctrl-C or SIGTERM), then removes the discovery file. Ports
    are TCP ports on ``options.host`` (loopback).

    Raises:
        DevStackError: another dev server runs from this folder, or a port is taken;
            raised before any file is touched.
    """
    # moto: extra "embedded"
    from advanced_notes.tools.embedded_s3 import EmbeddedS3Server, deliver_bucket_events, listening_socket

    instance = instance_dir().resolve()
    lock = StackLock(instance)
    try:
        lock.acquire()
    except DiscoveryError as exc:
        raise DevStackError(str(exc)) from None
    try:
        try:
            api_socket = listening_socket(options.host, options.port)
        except OSError as exc:
            raise DevStackError(
                f"cannot listen on {options.host}:{options.port} for the API: {exc.strerror} (pass --port)"
            ) from None
        s3 = EmbeddedS3Server(options.host, options.s3_port)
        try:
            s3.start()
        except OSError as exc:
            api_socket.close()
            raise DevStackError(
                f"cannot listen on {options.host}:{options.s3_port} for the S3 emulator: {exc.strerror}"
                " (pass --s3-port)"
            ) from None
        try:
            _serve(options, instance, api_socket, deliver_bucket_events)
        finally:
            s3.stop()
            remove_stack(instance)
    finally:
        lock.release()


def _serve(options: EmbeddedOptions, instance: Path, api_socket: socket.socket, deliver_events: Any) -> None:
    # One log for the API and the emulator (create_app sets it up, in text here): the app's
    # request lines; the emulator's own lines only at LOG_LEVEL=DEBUG.
    db_file = instance / EMBEDDED_DB
    # The broker's messages and beat's schedule belong to the database they are about.
    for pattern in (EMBEDDED_DB, DEV_BROKER_FILENAME, BEAT_SCHEDULE):
        for stale in instance.glob(pattern + "*"):
            stale.unlink()
    settings = embedded_config(options, db_file)
    app = create_app(settings)
    services = services_of(app)
    migrate.upgrade(services.db.url)
    services.storage.ensure_bucket()
    # The demo page PUTs from the API's origin straight to the emulator (another port,
    # so another origin): without rules moto answers the CORS preflight 403.
    services.storage.put_cors_rules(required_cors_rules(browser_origins(options.host, options.port)))
    deliver_events(
        services.storage.bucket, services.settings.s3_events_queue_url, clips_folder(services.settings.key_prefix)
    )
    events = DevEventConsumer(services)
    token = mint_token(services.settings, options.subject, TOKEN_SECONDS)
    api = f"http://{options.host}:{options.port}"
    write_stack(instance, DevStack(api=api, token=token, pid=os.getpid(), settings=settings))
    # From here a SIGTERM unwinds through the finally below, which stops the worker.
    _stop_on_sigterm()
    worker = DevWorker(instance, settings)
    try:
        events.start()
        worker_line = _start_worker(options, worker)
        _announce(options, api, token, services, worker_line)
        _serve_forever(options, app, api_socket)
    except KeyboardInterrupt:
        pass
    finally:
        events.stop()
        worker.stop()
        api_socket.close()


def _start_worker(options: EmbeddedOptions, worker: DevWorker) -> str:
    """Start the worker unless turned off or not installed; return the banner's line about it."""
    if not options.worker:
        return "off (--no-worker): ready clips stay queued"
    missing = [name for name in ("celery", "av") if importlib.util.find_spec(name) is None]
    if missing:
        return f"off: {', '.join(missing)} not installed (pip install -e '.[processing]')"
    worker.start()
    return (
        f"Celery, 1 process + the relay (pid {worker.pid}): processes each ready clip"
        f" (renditions, loudness, peaks); broker {DEV_BROKER_FILENAME} here, nothing to install"
    )


def _announce(options: EmbeddedOptions, api: str, token: str, services: Any, worker_line: str) -> None:
    cmd = _command_hint()
    print(
        f"""
Advanced Notes audio clips: embedded default
  API       {api}   (interactive docs: {api}/api/docs)
  S3        http://{options.host}:{options.s3_port}   bucket {services.storage.bucket} (moto, in memory)
  Database  {redact_url(services.db.url)}  (recreated at each start)
  Worker    {worker_line}
  Events    the bucket's ObjectCreated events -> an SQS queue of the emulator -> this server:
            an upload whose client never calls complete is finished within seconds

Token for sub={options.subject} (24 h):
  export ADVANCED_NOTES_TOKEN={token}

In the browser (upload, record, play; the token rides in the #fragment, which never reaches a server log):
  {api}/app#token={token}

Try, in another terminal from this folder:
  {cmd} upload ../shared/fixtures/audio/note.m4a --note-id demo
  curl -s -H "Authorization: Bearer $ADVANCED_NOTES_TOKEN" {api}/api/notes/demo/audio
  curl -s -H "Authorization: Bearer $ADVANCED_NOTES_TOKEN" {api}/api/audio-clips/<id>   ("processing")
  {cmd} storage check      (every command here finds this server; Ctrl-C stops it)
""",
        flush=True,
    )


def _serve_forever(options: EmbeddedOptions, app: Any, api_socket: socket.socket) -> None:
    server = make_server(
        options.host, options.port, app, threaded=True, request_handler=_QuietRequestHandler, fd=api_socket.fileno()
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
