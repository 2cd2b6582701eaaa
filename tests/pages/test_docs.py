"""The documentation's examples that can be checked without a network, and what the docs
claim about the code: every setting has a row, every page is linked from the home page, the
shell steps run on macOS too, and the built site fetches nothing from outside hosts.

The site is also built by `make docs` (MkDocs, --strict) in .ci/run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from testkit.paths import REPO

JSON_BLOCKS = [
    (page.name, block)
    for page in sorted((REPO / "docs").glob("*.md"))
    for block in re.findall(r"```json\n(.*?)```", page.read_text(), re.S)
]


@pytest.mark.parametrize("page, block", JSON_BLOCKS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(JSON_BLOCKS)])
def test_json_examples_parse(page, block):
    json.loads(block)


def test_the_iam_policy_grants_what_the_service_calls():
    text = (REPO / "docs" / "providers.md").read_text()
    policy = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket"} <= actions


def test_the_readme_keeps_the_two_commands_first():
    lines = (REPO / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("make dev ") and block[1].startswith("make test ")
    assert len(lines) < 120


# --- docs that say what the code does --------------------------------

DOCS = REPO / "docs"


def settings_page_variables() -> set[str]:
    """Variables named in the first column of docs/settings.md's tables."""
    names: set[str] = set()
    for line in (DOCS / "settings.md").read_text().splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


def test_the_settings_page_has_a_row_for_every_variable_the_code_reads():
    """What the code reads comes from the code (as for .env.example), not from a list here."""
    from tests.helpers import read_elsewhere, settings_aliases, settings_variables

    read = settings_variables() | read_elsewhere()
    rows = settings_page_variables()
    assert {"S3_BUCKET", "WEBHOOK_URLS", "GUNICORN_WORKERS", "S3_BUCKET_NAME"} <= rows  # the scan itself works
    assert not read - rows, f"docs/settings.md has no row for {sorted(read - rows)}"
    unknown = rows - read - settings_aliases()
    assert not unknown, f"docs/settings.md documents {sorted(unknown)}, which nothing reads"


def test_the_docs_home_links_every_page():
    home = (DOCS / "index.md").read_text()
    linked = set(re.findall(r"\]\(([a-z0-9-]+\.md)[)#]", home))
    pages = {page.name for page in DOCS.glob("*.md")} - {"index.md"}
    assert not pages - linked, f"docs/index.md does not link {sorted(pages - linked)}"


def shell_blocks() -> list[tuple[str, str]]:
    pages = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
    return [(p.name, b) for p in pages for b in re.findall(r"```(?:sh|bash|console)\n(.*?)```", p.read_text(), re.S)]


def test_shell_steps_use_no_gnu_only_options():
    """The steps work in macOS's shell too: BSD stat has no -c (wc -c < file counts on both)."""
    gnu_only = re.compile(r"\bstat -c\b|\bdate -d\b|\breadlink -f\b|\bsed -i\s+['\"]|\bbase64 -w\b")
    found = [(page, line) for page, block in shell_blocks() for line in block.splitlines() if gnu_only.search(line)]
    assert not found


def test_the_identity_provider_examples_are_accepted_settings():
    """docs/settings.md's Auth0 and Keycloak blocks load as production settings, with no other auth."""
    from advanced_notes.settings import load_settings

    text = (DOCS / "settings.md").read_text()
    section = text[text.index("## Tokens from an identity provider") :]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)[:2]
    assert len(blocks) == 2
    for block in blocks:
        env = dict(line.split("=", 1) for line in block.strip().splitlines())
        assert set(env) == {"AUTH_JWKS_URL", "AUTH_JWT_ISSUER", "AUTH_JWT_AUDIENCE"}
        production = {"APP_ENV": "prod", "S3_BUCKET": "notes", "DATABASE_URL": "postgresql+psycopg2://u@db/notes"}
        settings = load_settings(production | env)
        assert settings.auth_jwks_url == env["AUTH_JWKS_URL"] and settings.auth_jwt_secret is None
        assert env["AUTH_JWKS_URL"].startswith(env["AUTH_JWT_ISSUER"].rstrip("/"))


# --- the site asks no outside host for anything ----------------------------------------

_EXTERNAL = re.compile(r"^(https?:)?//", re.I)


class _Assets(HTMLParser):
    """Every URL a browser fetches by itself while showing a page (not the links one clicks)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "link" and (named.get("rel") or "") not in ("canonical", "alternate"):
            self.urls.append(named.get("href") or "")
        elif tag in ("script", "img", "iframe", "source", "audio", "video"):
            self.urls.append(named.get("src") or "")


def test_the_theme_loads_no_web_fonts():
    config = (REPO / "mkdocs.yml").read_text()
    assert re.search(r"^theme:\n(?:  .*\n)*?  font: false$", config, re.M)


def test_the_built_site_fetches_nothing_from_outside_hosts(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra (`make docs` installs it)")
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=REPO,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= len(list(DOCS.glob("*.md")))
    external = []
    for page in pages:
        parser = _Assets()
        parser.feed(page.read_text())
        external += [(page.name, url) for url in parser.urls if _EXTERNAL.match(url)]
    for sheet in site.rglob("*.css"):
        external += [(sheet.name, url) for url in re.findall(r"url\(['\"]?((?:https?:)?//[^)'\"]+)", sheet.read_text())]
        external += [
            (sheet.name, url) for url in re.findall(r"@import\s+['\"]((?:https?:)?//[^'\"]+)", sheet.read_text())
        ]
    assert not external, external


def documented_defaults() -> list[tuple[str, str]]:
    """(variable, default cell) of docs/settings.md's rows, a ``A / B`` row split in two."""
    found = []
    for line in (DOCS / "settings.md").read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", re.sub(r"\(.*?\)", "", cells[0]))  # aliases are in ( )
        defaults = cells[1].split(" / ")
        if len(names) == len(defaults):
            found += zip(names, (d.strip() for d in defaults), strict=True)
    return found


def test_the_settings_page_shows_the_models_defaults():
    """A default written as a value (``900``, ``0 (off)``, `` `INFO` ``) is the model's default."""
    from advanced_notes.settings import Settings

    fields = {names[0]: field for field, names in Settings.variable_names().items()}
    checked = 0
    for name, cell in documented_defaults():
        if name not in fields:
            continue  # read by gunicorn.conf.py, not the model
        default = Settings.model_fields[fields[name]].default
        number = re.fullmatch(r"(-?\d+(?:\.\d+)?)(?: \(.*\))?", cell)
        literal = re.fullmatch(r"`([^`]+)`", cell)
        if literal and re.fullmatch(r"[A-Z][A-Z0-9_]*", literal.group(1)):
            continue  # another variable's value
        if number:
            assert not isinstance(default, bool) and float(number.group(1)) == default, (name, cell, default)
        elif literal:
            expected = {True: "on", False: "off"}[default] if isinstance(default, bool) else str(default)
            assert literal.group(1) == expected, (name, cell, default)
        else:
            continue  # a sentence ("the built-in list", "SQLite file under instance/")
        checked += 1
    assert checked >= 40  # the parse itself works
