""".env.example lists every variable the code reads, and nothing it doesn't (DESIGN §7).

What the code reads comes from the code itself, not from a list kept here:

- every field of :class:`~advanced_notes.settings.Settings`, by its canonical variable
  (the first of its ``validation_alias`` names; the aliases of earlier setups are named in
  comments, not listed);
- every ``os.environ`` / ``getenv`` read of a literal name in the package, ``wsgi.py``,
  ``gunicorn.conf.py`` and the Alembic environment (``PROMETHEUS_MULTIPROC_DIR``, ``GUNICORN_*``).

A variable is listed by an ``NAME=value`` line, or by a ``# NAME=value`` line when it must
not be set from ``.env``: gunicorn reads its configuration before ``wsgi.py`` loads ``.env``.
Options of the client commands (``envvar=`` of click, e.g. ``ADVANCED_NOTES_TOKEN``) are
command-line inputs of ``advanced-notes``, which never loads ``.env``: they are not listed.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import SERVER_CONFIG, environ_reads, read_elsewhere, settings_aliases, settings_variables

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
_ASSIGNMENT = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=")


def listed() -> dict[str, bool]:
    """Variables of .env.example -> whether the line is commented out."""
    names: dict[str, bool] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            assert match.group(2) not in names, f"{match.group(2)} is listed twice"
            names[match.group(2)] = match.group(1) is not None
    return names


def test_the_scan_finds_what_it_should():
    # Guards the derivation itself: a regex that silently matched nothing would pass vacuously.
    assert {"S3_BUCKET", "AWS_REGION", "APP_ENV", "S3_PROVIDER", "CORS_ORIGINS"} <= settings_variables()
    assert {"S3_BUCKET_NAME", "S3_REGION", "AWS_DEFAULT_REGION", "ENV", "FLASK_ENV"} <= settings_aliases()
    assert {"PROMETHEUS_MULTIPROC_DIR", "GUNICORN_WORKERS", "FORWARDED_ALLOW_IPS"} <= read_elsewhere()


def test_env_example_lists_every_variable_the_code_reads():
    missing = (settings_variables() | read_elsewhere()) - set(listed())
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_lists_nothing_the_code_does_not_read():
    unknown = set(listed()) - settings_variables() - read_elsewhere()
    aliases = unknown & settings_aliases()
    assert not aliases, f"list the canonical names, not the aliases {sorted(aliases)}"
    assert not unknown, f".env.example lists {sorted(unknown)}, which nothing reads"


def test_server_process_variables_are_commented_out():
    # gunicorn.conf.py runs before wsgi.py loads .env: a value there would only seem to work.
    names = listed()
    active = sorted(name for name in environ_reads(SERVER_CONFIG) if not names.get(name, True))
    assert not active, f"{active} are read by gunicorn.conf.py; list them as '# NAME=value'"


def test_settings_are_listed_for_use():
    # The app's own settings are active lines, so `cp .env.example .env` shows every one.
    names = listed()
    commented = sorted(name for name in settings_variables() if names.get(name))
    assert not commented, f"{commented} are settings of the app; list them without '#'"
