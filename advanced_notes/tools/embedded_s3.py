"""The embedded S3 store of ``advanced-notes dev``: moto's server, with two of its edges filed off.

moto (``moto[server]``, a dev dependency) is the emulator; this module only changes how
it is served:

1. **Every PUT gets an answer.** moto's dispatcher guesses the AWS service of a request
   without an ``Authorization`` header (a presigned URL) from its body when the body is
   ``application/x-www-form-urlencoded`` (``DomainDispatcherApplication._get_body``,
   moto 5.x). It reads the whole body off the socket, decodes it as UTF-8, and only puts
   the bytes back when that worked. Audio is not UTF-8, so the bytes are gone and the S3
   handler then waits for ``Content-Length`` bytes that will never come: the PUT hangs
   until the client hangs up. ``curl -X PUT --data-binary @note.m4a`` sends exactly that
   content type. :class:`_BodyKeepingDispatcher` always puts the bytes back.
   Then the S3 handler itself parses a form body as a form (werkzeug's ``request.data``
   is empty for a form), so the object would be stored empty; :class:`_PutBodyRequest`
   keeps every PUT body as bytes, as S3 does (it has no form PUTs). The object is then
   stored as sent, with the Content-Type the client sent, and ``complete`` judges it.
2. **A taken port fails at once.** ``moto.server.ThreadedMotoServer`` binds inside its
   thread: when the port is taken the thread dies and ``start()`` waits for ever.
   :class:`EmbeddedS3Server` binds in ``start()`` and raises :class:`OSError`.

3. **The bucket tells the service what arrived.** :func:`deliver_bucket_events` creates an
   SQS queue in the same emulator (moto serves every AWS API on one port) and points the
   bucket's ObjectCreated notifications at it, as ``put_bucket_notification_configuration``
   does on AWS; moto then sends the S3 event record to the queue on every PUT and
   CompleteMultipartUpload, and ``events consume`` (or the dev server's own consumer) reads it.

Its access log (``advanced_notes.embedded_s3``, at DEBUG: one line per S3 call drowns the
API's own lines) shows the method, the path without the query string (presigned URLs carry
their signature there) and the status, in plain text.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import (
    BackendRequest,
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3.models import s3_backends
from moto.sqs.models import sqs_backends
from werkzeug.serving import BaseWSGIServer, make_server

log = logging.getLogger("advanced_notes.embedded_s3")

_FORM = "application/x-www-form-urlencoded"
_QUERY = re.compile(r"\?[^\s\"]*")


class _BodyKeepingDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, but reading a form body to guess the service never loses the body."""

    def _get_body(self, environ: dict[str, Any]) -> str | None:
        """The body as text when it is a UTF-8 form, else None; ``wsgi.input`` is always rewound.

        Replaces moto's method of the same name (moto 5.x), which drops the bytes it read
        when they are not UTF-8 (see the module docstring).
        """
        if not environ.get("CONTENT_TYPE", "").startswith(_FORM):
            return None
        try:
            size = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if size <= 0:
            return None
        raw = environ["wsgi.input"].read(size)
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            text: str = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return text


class _PutBodyRequest(BackendRequest):
    """moto's request class, except that a PUT body is never parsed as a form (S3 has no form PUTs)."""

    @property
    def want_form_data_parsed(self) -> bool:
        return self.method != "PUT" and super().want_form_data_parsed


def _create_backend_app(service: Any) -> Flask:
    app = create_backend_app(service)
    app.request_class = _PutBodyRequest
    return app


class _QuietRequestHandler(MotoRequestHandler):
    """One plain line per request, without the query string (no signatures in the log)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        log.debug("%s %s %s", self.command, path, getattr(code, "value", code))

    def log(self, type: str, message: str, *args: Any) -> None:
        # werkzeug's other messages (errors) may quote the request line: drop its query too.
        text = message % args if args else message
        getattr(log, type if type in ("info", "warning", "error") else "info")("%s", _strip_queries(text))


def _strip_queries(text: str) -> str:
    """``text`` with every ``?query`` removed up to the next space or quote."""
    return _QUERY.sub("", text)


class EmbeddedS3Server:
    """moto's S3 server on ``host:port`` in a background thread (same calls as ThreadedMotoServer).

    Args:
        host: IP address to bind (loopback).
        port: TCP port; 0 picks a free one (see :meth:`get_host_and_port`).
    Raises:
        OSError: from :meth:`start` when the port cannot be bound (e.g. it is taken).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9000):
        self._host, self._port = host, port
        self._server: BaseWSGIServer | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (raising OSError at once when that fails) and serve in a daemon thread."""
        app = _BodyKeepingDispatcher(_create_backend_app)
        self._socket = listening_socket(self._host, self._port)
        self._server = make_server(
            self._host, self._port, app, threaded=True, request_handler=_QuietRequestHandler, fd=self._socket.fileno()
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-s3", daemon=True)
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        """The bound address (after :meth:`start`)."""
        assert self._server is not None, "call start() first"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._socket is not None:
            self._socket.close()
        if self._thread is not None:
            self._thread.join(5)


def deliver_bucket_events(bucket: str, queue_url: str, key_prefix: str = "") -> None:
    """Send the emulator bucket's ObjectCreated events to an SQS queue of the same emulator.

    Creates the queue (idempotent) and sets the bucket's notification configuration, as
    ``CreateQueue`` and ``PutBucketNotificationConfiguration`` do on AWS. moto then puts
    the S3 event record (and, at once, an ``s3:TestEvent``) on the queue. Both are set on
    moto's in-process backends, which its server answers from, so no AWS client is needed.

    Args:
        bucket: an existing bucket of the emulator (in the queue's region).
        queue_url: ``http://host:port/<account>/<name>``; the account must be moto's default
            account, which is the account of every request signed with a plain access key.
        key_prefix: only keys starting with it are announced ("" = every key).
    Raises:
        ValueError: the URL names another account (its queue would never get an event).
    """
    account, name = urlsplit(queue_url).path.strip("/").split("/")
    if account != DEFAULT_ACCOUNT_ID:
        raise ValueError(f"the emulator's account is {DEFAULT_ACCOUNT_ID}, not {account}")
    store = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    region = store.get_bucket(bucket).region_name
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][region].create_queue(name)
    rule: dict[str, Any] = {"Id": "advanced-notes-dev", "Queue": queue.queue_arn, "Event": ["s3:ObjectCreated:*"]}
    if key_prefix:
        rule["Filter"] = {"S3Key": {"FilterRule": [{"Name": "prefix", "Value": key_prefix}]}}
    store.put_bucket_notification_configuration(bucket, {"QueueConfiguration": [rule]})


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, for ``make_server(fd=...)``.

    werkzeug's own bind prints its message and calls ``sys.exit(1)`` when the port is
    taken (in a server thread, that ends the thread and not the program); binding here
    raises :class:`OSError` in the caller instead.

    Raises:
        OSError: the address cannot be bound (``errno.EADDRINUSE`` when taken).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock
