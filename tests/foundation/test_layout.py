"""The floor plan holds: what each layer may load, checked by importing it in a clean process.

``lint-imports`` (setup.cfg) checks the import graph statically; these tests check what
really loads, including third-party packages that import others.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SERVER_LIBRARIES = ("flask", "werkzeug", "sqlalchemy", "boto3", "botocore", "jwt")


def _import_in_clean_process(module: str, blocked: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Import ``module`` in a fresh interpreter where importing any of ``blocked`` fails."""
    code = textwrap.dedent(f"""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {blocked!r}:
                    raise ImportError(f"blocked: {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        import {module}
        loaded = sorted(m for m in {SERVER_LIBRARIES!r} if m in sys.modules)
        assert not loaded, loaded
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_client_sdk_imports_with_requests_alone():
    # As in a venv with only requests and tqdm: the server's and the parsers' libraries are missing.
    blocked = (*SERVER_LIBRARIES, "mutagen", "enzyme", "puremagic", "marshmallow", "alembic", "pydantic")
    result = _import_in_clean_process("advanced_notes.client", blocked)
    assert result.returncode == 0, result.stderr


def test_the_client_describes_a_file_without_the_parsing_libraries(tmp_path, audio):
    path = tmp_path / "note.ogg"
    path.write_bytes(audio["note.ogg"].data)
    code = textwrap.dedent(f"""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("mutagen", "enzyme", "puremagic"):
                    raise ImportError(name)
                return None

        sys.meta_path.insert(0, Block())
        from advanced_notes.client import describe_file
        print(describe_file({str(path)!r}))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "'mime_type': 'audio/ogg'" in result.stdout and "'duration_ms': None" in result.stdout


# Every module of the domain package, so a new one is checked without editing this list.
DOMAIN_MODULES = sorted(
    f"advanced_notes.domain.{info.name}"
    for info in pkgutil.iter_modules([str(Path(__file__).resolve().parents[2] / "advanced_notes" / "domain")])
)


@pytest.mark.parametrize("module", DOMAIN_MODULES)
def test_domain_modules_load_no_server_library(module):
    result = _import_in_clean_process(module, SERVER_LIBRARIES)
    assert result.returncode == 0, result.stderr


def test_the_web_side_loads_without_pyav_or_numpy():
    # A web worker never loads the media engine, not even through a third-party package
    # (lint-imports sees only the project's own imports): every module of the app, api,
    # services, adapters, settings and domain imports with av and numpy unimportable.
    code = textwrap.dedent("""
        import importlib, pkgutil, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("av", "numpy"):
                    raise ImportError(f"blocked: {name}")
                return None

        sys.meta_path.insert(0, Block())
        import advanced_notes.app, advanced_notes.settings
        for package in ("api", "services", "adapters", "domain"):
            module = importlib.import_module(f"advanced_notes.{package}")
            for info in pkgutil.walk_packages(module.__path__, f"advanced_notes.{package}."):
                importlib.import_module(info.name)
        assert "advanced_notes.media" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def _top_level_imports(folder: str) -> set[tuple[str, str]]:
    """(file, top-level package) of every import in ``folder``'s Python files."""
    import ast

    repo = Path(__file__).resolve().parents[2]
    found = set()
    for path in (repo / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {(path.name, alias.name.split(".")[0]) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((path.name, node.module.split(".")[0]))
    return found


def test_tests_and_bench_share_only_testkit():
    # What both need (servers on loopback, fixtures, crafted files) lives in testkit, so
    # neither the suite nor the benchmarks break when the other is reorganised.
    assert {f for f, top in _top_level_imports("tests") if top == "bench"} == set()
    assert {f for f, top in _top_level_imports("bench") if top == "tests"} == set()
    assert {f for f, top in _top_level_imports("testkit") if top in ("tests", "bench")} == set()


def test_importing_one_api_module_loads_no_blueprint_service_or_store_client():
    # Minting a token (api.auth) or reading the services from a command (api.context) runs
    # the api package's __init__ first: it must not build the whole HTTP layer.
    code = textwrap.dedent("""
        import sys
        import advanced_notes.api.auth, advanced_notes.api.context
        heavy = ("boto3", "flask_smorest", "advanced_notes.services", "advanced_notes.api.registry",
                 "advanced_notes.api.clips", "advanced_notes.api.schemas")
        loaded = sorted(m for m in sys.modules if m.startswith(heavy))
        assert not loaded, loaded
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


#: Libraries a web worker has no use for: the worker's (PyAV, numpy, Celery), the CLI's and
#: the client SDK's (requests, tqdm, alembic), boto3's managed transfers (the worker's file
#: transfers), cryptography, which only asymmetric token keys need, and ctypes (megabytes
#: of RSS), which only giving a rejected parse's heap back needs.
NOT_IN_A_WEB_WORKER = (
    "av",
    "numpy",
    "celery",
    "kombu",
    "requests",
    "tqdm",
    "alembic",
    "moto",
    "boto3",
    "s3transfer",
    "cryptography",
    "ctypes",
    "advanced_notes.media",
    "advanced_notes.worker",
    "advanced_notes.client",
)


def _web_worker(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` after ``import wsgi`` (what a gunicorn worker imports) in a fresh interpreter."""
    preamble = "import sys, json\nimport wsgi\napp = wsgi.app\n"
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-c", preamble + textwrap.dedent(code)],
        cwd=root,
        env={**os.environ, **env, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_web_worker_serving_requests_loads_none_of_the_heavy_libraries(base_config):
    # The app as gunicorn loads it, then the requests a client makes: create, list, read,
    # complete (no object: the store's HEAD answers), health and metrics.
    result = _web_worker(
        {k: str(v) for k, v in base_config.items()},
        f"""
        from advanced_notes.api.auth import mint_token
        from advanced_notes.api.context import services_of
        client = app.test_client()
        headers = {{"Authorization": "Bearer " + mint_token(services_of(app).settings, "heavy-modules")}}
        created = client.post("/api/audio-clips", json={{"mime_type": "audio/ogg", "bytes": 10}}, headers=headers)
        clip_id = created.get_json()["clip"]["id"]
        statuses = [
            created.status_code,
            client.get("/api/audio-clips", headers=headers).status_code,
            client.get(f"/api/audio-clips/{{clip_id}}", headers=headers).status_code,
            client.post(f"/api/audio-clips/{{clip_id}}/complete", headers=headers).status_code,
            client.get("/healthz").status_code,
            client.get("/metrics").status_code,
        ]
        loaded = sorted(m for m in {NOT_IN_A_WEB_WORKER!r} if m in sys.modules)
        print(json.dumps({{"statuses": statuses, "loaded": loaded, "jwt": "jwt" in sys.modules}}))
        """,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["statuses"][:3] == [201, 200, 200] and seen["statuses"][4:] == [200, 200], seen
    assert seen["statuses"][3] == 409, seen  # complete: the HEAD found no object
    assert seen["loaded"] == [] and seen["jwt"], seen


#: A JWKS configuration (the key set is fetched on the first token, never here).
JWKS = {"AUTH_JWKS_URL": "http://127.0.0.1:9/jwks.json", "AUTH_JWT_AUDIENCE": "advanced-notes"}


def test_a_web_worker_verifying_jwks_tokens_has_cryptography(base_config):
    env = {k: str(v) for k, v in base_config.items()} | JWKS
    result = _web_worker(env, 'print("cryptography" in sys.modules, sys.modules["jwt"].algorithms.has_crypto)')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True True"


def test_a_jwks_app_after_an_hs256_app_in_one_process_says_why_it_cannot_start(base_config):
    result = _web_worker(
        {k: str(v) for k, v in base_config.items()},
        f"""
        import os
        from advanced_notes.app import create_app
        try:
            create_app({{**os.environ, **{JWKS!r}}})
        except RuntimeError as exc:
            print(exc)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "needs a process of its own" in result.stdout
