"""Where the repository and the real audio fixtures are."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (gunicorn.conf.py, wsgi.py, schemathesis.toml are there).
REPO = Path(__file__).resolve().parent.parent
#: The real audio files and their MANIFEST.tsv (``AUDIO_FIXTURES_DIR`` overrides ``../shared``).
FIXTURES = Path(os.environ.get("AUDIO_FIXTURES_DIR", REPO.parent / "shared" / "fixtures" / "audio"))
#: One recording per container the service accepts.
AUDIO_FILES = ["note.m4a", "note.mp3", "note.wav", "note.ogg", "note.webm", "note.flac"]
