"""Where the benchmarks find the real audio fixtures, as the tests do (tests/conftest.py).

``AUDIO_FIXTURES_DIR`` when set, else ``../shared/fixtures/audio`` beside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

AUDIO_FIXTURES = Path(
    os.environ.get("AUDIO_FIXTURES_DIR") or Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "audio"
)
