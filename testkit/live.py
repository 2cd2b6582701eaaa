"""A client's side of the service: the real audio fixtures, a presigned PUT, an API client."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from advanced_notes.domain.mime import mime_type_for_filename
from testkit.paths import FIXTURES


@dataclass(frozen=True)
class AudioFixture:
    """One real recording of ``MANIFEST.tsv``: size in bytes, SHA-256 (base64), duration in ms."""

    name: str
    path: Path
    size: int
    sha256_base64: str
    duration_ms: int | None

    @property
    def data(self) -> bytes:
        """The file's bytes."""
        return self.path.read_bytes()

    @property
    def mime_type(self) -> str:
        """The content type a client declares for this file's name (the API's one table)."""
        mime_type = mime_type_for_filename(self.name)
        assert mime_type is not None, f"no audio type for {self.name}"
        return mime_type


def read_manifest(fixtures: Path = FIXTURES) -> dict[str, AudioFixture]:
    """The fixtures listed in ``fixtures/MANIFEST.tsv``, by file name.

    Raises:
        FileNotFoundError: no manifest there (set ``AUDIO_FIXTURES_DIR``).
    """
    with (fixtures / "MANIFEST.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {
        r["file"]: AudioFixture(
            r["file"],
            fixtures / r["file"],
            int(r["bytes"]),
            r["sha256_base64"],
            int(r["duration_ms"]) if r["duration_ms"] else None,
        )
        for r in rows
    }


def put_upload(upload: dict[str, Any], body: bytes) -> requests.Response:
    """PUT ``body`` to a presigned upload (``{"url", "headers"}`` of create) with exactly the
    returned headers, as a real HTTP client does."""
    return requests.put(upload["url"], data=body, headers=upload["headers"], timeout=30)


class Api:
    """A ``requests`` client of a served app, authenticated as one owner by ``token``."""

    def __init__(self, base: str, token: str):
        self.base, self.http = base, requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        """Send ``method path`` (30 s timeout) and return the response."""
        return self.http.request(method, self.base + path, timeout=30, **kw)

    def create(self, f: AudioFixture, **body: Any) -> dict[str, Any]:
        """Create an upload session for fixture ``f`` (201 asserted)."""
        response = self("POST", "/api/audio-clips", json={"mime_type": f.mime_type, "bytes": f.size, **body})
        assert response.status_code == 201, response.text
        return response.json()

    def upload(self, f: AudioFixture, **body: Any) -> dict[str, Any]:
        """Create, PUT the fixture's bytes with the signed headers, complete (200 asserted)."""
        created = self.create(f, **body)
        assert put_upload(created["upload"], f.data).status_code == 200
        done = self("POST", f"/api/audio-clips/{created['clip']['id']}/complete")
        assert done.status_code == 200, done.text
        return done.json()["clip"]
