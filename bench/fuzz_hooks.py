"""Schemathesis hooks that let the API fuzzer reach the audio parsers.

Loaded by bench/fuzz.py through ``SCHEMATHESIS_HOOKS=bench.fuzz_hooks`` (the repository on PYTHONPATH).
Without them the stateful phase created clips but never stored an object, so every
``complete`` answered ``upload_missing`` and the parsers were never reached.

- ``map_case`` on ``POST /api/audio-clips``: about half the valid generated create bodies are
  rewritten to declare a real fixture (its MIME type and size) or a seeded mutant of one
  (bench/fuzz_audio.py's mutations, declared with the mutant's size), a third of them as
  multipart uploads; the rest stay as schemathesis made them.
- ``after_call`` on a 201 from that operation: PUTs the planned bytes (or, for a body
  schemathesis made on its own, random bytes of the declared size when that is small) to
  ``upload.url`` with exactly ``upload.headers``, or, for a multipart clip, signs its parts
  through the API and PUTs each part, so the OpenAPI links that follow (complete,
  playback, delete, the multipart steps, ...) work on a clip with a real object.
- ``before_load_schema``: links from create, re-sign and complete to ``POST
  /api/storage-events`` with the store's ObjectCreated event for the clip's object.
- create and list start the stateful phase's scenarios (see ``_start_scenarios_at_create``).

Environment (bench/fuzz.py sets it): ``FUZZ_API_BASE_URL`` and ``FUZZ_API_TOKEN`` (to sign
parts), ``FUZZ_S3_BUCKET`` (the bucket named in the events).

Counts of what was PUT are written at exit to ``FUZZ_HOOKS_REPORT`` (JSON) when set; with
``FUZZ_DEBUG`` set too, the statuses of every operation by phase go to
``<FUZZ_HOOKS_REPORT>.calls`` (keys ``"<phase>: <METHOD> <path> <status>"``).
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import json
import os
import random
import threading
from pathlib import Path
from typing import Any

import requests
import schemathesis

from bench.fuzz_audio import FIXTURES, mutate  # the repository root is on PYTHONPATH (bench/fuzz.py sets it)

_MIME_BY_SUFFIX = {
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".webm": "audio/webm",
    ".flac": "audio/flac",
}
_SEEDS = sorted((p.suffix, p.read_bytes()) for p in FIXTURES.glob("note.*") if p.suffix in _MIME_BY_SUFFIX)
#: Largest random body PUT for a create that schemathesis made on its own.
_RANDOM_PUT_MAX_BYTES = 256 * 1024
_CREATE = ("POST", "/api/audio-clips")

_lock = threading.Lock()
#: (mime_type, bytes) -> the payload planned for a create that declares them.
_planned: dict[tuple[str, int], bytes] = {}
stats: collections.Counter[str] = collections.Counter()
calls: collections.Counter[str] = collections.Counter()


def _is_create(context: Any) -> bool:
    operation = context.operation
    return operation is not None and (operation.method.upper(), operation.path) == _CREATE


def _phase(case: Any) -> str:
    meta = case.meta
    return "unknown" if meta is None else str(getattr(meta.phase.name, "value", meta.phase.name))


def _negative(case: Any) -> bool:
    # A case generated to violate the schema must stay invalid: rewriting it into a valid
    # body made schemathesis report "schema-violating request accepted" (ST201).
    meta = case.meta
    if meta is None:
        return False
    return meta.generation.mode.is_negative or any(c.mode.is_negative for c in meta.components.values())


#: Operations that start the stateful phase's scenarios: create, and the list of clips.
_ROOTS = frozenset({"POST /api/audio-clips", "GET /api/audio-clips"})


def _start_scenarios_at_create() -> None:
    # schemathesis reads every ``*_id`` field as a reference to a resource, and nothing in
    # this API produces a "Note" (note ids belong to the notes app): so create and list,
    # which accept ``note_id``, are not trusted as scenario roots, and with ``complete`` the
    # only trusted root every scenario started at a random clip id and ended at a 404.
    # Trusting create and list as roots too lets scenarios follow the links from a clip.
    from schemathesis.specs.openapi import stateful

    classify = getattr(stateful, "classify_root_transitions", None)
    if classify is None or getattr(classify, "_fuzz_roots", False):
        return  # another schemathesis: tests/foundation/test_fuzz.py's coverage floor says so

    def classify_with_create(operations: Any, transitions: Any, graph: Any) -> Any:
        roots = classify(operations, transitions, graph)
        promoted = _ROOTS & roots.fallback
        roots.fallback -= promoted
        roots.reliable |= promoted
        return roots

    classify_with_create._fuzz_roots = True  # type: ignore[attr-defined]
    stateful.classify_root_transitions = classify_with_create


_start_scenarios_at_create()


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    """Add links to ``POST /api/storage-events`` (when the document has it): the event the
    store sends for the clip's object, from create, re-sign and complete.

    They are the fuzzer's, not the document's: the store, not an API client, posts events.
    """
    paths = raw_schema.get("paths", {})
    if _STORAGE_EVENTS not in paths:
        return
    for path, method, status, key in _STORAGE_EVENT_SOURCES:
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if isinstance(response, dict):
            response.setdefault("links", {})["StorageEvent"] = _storage_event_link(key)


def _storage_event_link(key_expression: str) -> dict[str, Any]:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": os.environ.get("FUZZ_S3_BUCKET", "loopback")}, "object": {"key": key_expression}},
    }
    return {
        "operationRef": "#/paths/" + _STORAGE_EVENTS.replace("/", "~1") + "/post",
        "requestBody": {"Records": [record]},
        "description": "The store's ObjectCreated event for the clip's object.",
    }


#: Storage events links: (path, method, status, runtime expression of the object key).
_STORAGE_EVENTS = "/api/storage-events"
_STORAGE_EVENT_SOURCES = (
    ("/api/audio-clips", "post", "201", "$response.body#/clip/storage_key"),
    ("/api/audio-clips/{clip_id}/upload-url", "post", "200", "$response.body#/upload/storage_key"),
    ("/api/audio-clips/{clip_id}/complete", "post", "200", "$response.body#/clip/storage_key"),
)


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Rewrite about half of the valid create bodies to declare a real or mutated fixture,
    a third of those as multipart uploads."""
    body = case.body
    if not _is_create(context) or not isinstance(body, dict) or not _SEEDS or _negative(case):
        return case
    digest = int.from_bytes(hashlib.sha256(repr(sorted(body.items(), key=str)).encode()).digest()[:8], "big")
    rng = random.Random(digest)
    if rng.random() < 0.5:
        return case
    suffix, data = _SEEDS[rng.randrange(len(_SEEDS))]
    payload = data if rng.random() < 0.4 else mutate(data, rng)
    if not payload:
        return case
    mime = _MIME_BY_SUFFIX[suffix]
    with _lock:
        _planned[(mime, len(payload))] = payload
    kept = {k: v for k, v in body.items() if k in ("note_id", "duration_ms")}
    case.body = {**kept, "mime_type": mime, "bytes": len(payload)}
    if rng.random() < 1 / 3:
        case.body["multipart"] = True
    return case


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """After a 201 from create, PUT bytes to the upload URL (or the part URLs) so the links
    lead somewhere."""
    if os.environ.get("FUZZ_DEBUG"):
        calls[f"{_phase(case)}: {context.operation.label} {response.status_code}"] += 1
    if not _is_create(context) or response.status_code != 201:
        return
    try:
        created = response.json()
        clip, upload, session = created["clip"], created["upload"], created.get("multipart")
    except (ValueError, KeyError, TypeError, AttributeError):
        return
    if upload is None and session is None:  # a replay of a clip no longer pending
        stats["create_without_put_url"] += 1
        return
    with _lock:
        payload = _planned.get((clip["mime_type"], clip["bytes"]))
    if payload is None:
        if clip["bytes"] > _RANDOM_PUT_MAX_BYTES:
            stats["create_without_put"] += 1
            return
        payload = random.Random(clip["id"]).randbytes(clip["bytes"])
        kind = "random"
    else:
        kind = "fixture"
    if upload is None:
        _put_parts(case, clip["id"], session, payload, kind)
        return
    # Only the declared headers; a declared checksum will not match random bytes: the
    # store's 400 is then what a client with a wrong checksum gets, and complete 409s.
    put = requests.put(upload["url"], data=payload, headers=upload["headers"], timeout=30)
    stats[f"put_{kind}_{put.status_code}"] += 1


def _put_parts(case: Any, clip_id: str, session: dict[str, Any], payload: bytes, kind: str) -> None:
    # Sign every part through the API as a client does (docs/multipart.md), then PUT each
    # slice of part_size bytes with exactly the signed headers.
    base_url = os.environ.get("FUZZ_API_BASE_URL")
    token = os.environ.get("FUZZ_API_TOKEN")
    try:
        part_size, part_count = int(session["part_size"]), int(session["part_count"])
    except (KeyError, TypeError, ValueError):
        return
    if not base_url or not token or not 1 <= part_count <= 1000:
        stats["create_multipart_without_put"] += 1
        return
    signed = requests.post(
        f"{base_url}/api/audio-clips/{clip_id}/multipart/parts",
        json={"part_numbers": list(range(1, part_count + 1))},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if signed.status_code != 200:
        stats[f"sign_parts_{signed.status_code}"] += 1
        return
    for part in signed.json()["parts"]:
        start = (part["part_number"] - 1) * part_size
        put = requests.put(part["url"], data=payload[start : start + part_size], headers=part["headers"], timeout=30)
        stats[f"put_part_{kind}_{put.status_code}"] += 1


def _report() -> None:
    path = os.environ.get("FUZZ_HOOKS_REPORT")
    if path:
        Path(path).write_text(json.dumps(dict(stats), sort_keys=True))
    if path and calls:
        Path(path + ".calls").write_text(json.dumps(dict(calls), sort_keys=True, indent=0))


atexit.register(_report)
