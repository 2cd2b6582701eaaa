"""A small Python client for the API: the three-step upload, playback, note audio.

Backs the ``advanced-notes upload/play/note-audio`` commands and can be imported by
apps and scripts::

    client = AudioClipsClient("http://127.0.0.1:8000", token)
    result = client.upload_file("note.m4a", note_id="n1")
    print(result["playback"]["url"])

Transient failures are retried with exponential backoff: API calls on read errors,
429, 502, 503 and 504 (honouring ``Retry-After``); creating is safe to retry because
every create carries an Idempotency-Key. A server that refuses the connection, or does
not accept it within ``CONNECT_TIMEOUT_SECONDS``, is an error at once: nothing answers
there, and waiting would only delay saying so. The PUT to the bucket is retried on
connection errors and 5xx, and an expired PUT URL is re-signed through
``POST /api/audio-clips/<id>/upload-url``.

Files of at least ``MULTIPART_THRESHOLD_BYTES`` go up in parts (docs/multipart.md):
several parts in parallel, each retried on its own (an expired part URL is re-signed),
and an interrupted upload resumes with :meth:`AudioClipsClient.resume_file`, which asks
the server which parts the store already holds and sends only the others. A
``KeyboardInterrupt`` stops the upload at once: parts in flight are abandoned (the store
keeps only whole parts, and the resume sends them again).

Modules, one job each: ``session`` (the HTTP session, its retries, the error type),
``files`` (what to declare for a local file), ``single`` (the one-PUT upload),
``parts`` (the multipart upload), ``clips`` (the client: the three steps, resume).
"""

from __future__ import annotations

from advanced_notes.client.clips import AudioClipsClient
from advanced_notes.client.files import describe_file, sha256_base64
from advanced_notes.client.session import ApiClientError

__all__ = ["ApiClientError", "AudioClipsClient", "describe_file", "sha256_base64"]
