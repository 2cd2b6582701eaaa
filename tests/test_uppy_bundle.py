"""The committed Uppy bundle is what its pinned sources build (esbuild is deterministic).

Runs where web/uppy has been installed (``cd web/uppy && npm ci``); elsewhere it is
skipped, because the suite must not need the npm registry: the page serves the
committed bundle, and this check keeps it honest whenever a developer rebuilds.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from .conftest import REPO

WEB = REPO / "web" / "uppy"
BUNDLE = REPO / "advanced_notes" / "static" / "uppy" / "uppy-page.js"


def test_the_lockfile_pins_the_versions_the_page_reports():
    lock = json.loads((WEB / "package-lock.json").read_text())
    package = json.loads((WEB / "package.json").read_text())
    for name, version in package["dependencies"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version  # exact pins
    assert "6.3.1" in BUNDLE.read_text()  # Uppy.VERSION, shown on the page


@pytest.mark.skipif(not (WEB / "node_modules" / ".bin" / "esbuild").exists(), reason="web/uppy not installed (npm ci)")
def test_the_committed_bundle_is_rebuilt_byte_for_byte(tmp_path):
    out = tmp_path / "uppy-page.js"
    esbuild = WEB / "node_modules" / ".bin" / "esbuild"
    script = json.loads((WEB / "package.json").read_text())["scripts"]["build"]
    args = script.split()[1:]
    args = [f"--outfile={out}" if a.startswith("--outfile=") else a for a in args]
    assert shutil.which("node"), "node is needed to run esbuild"
    subprocess.run([str(esbuild), *args], cwd=WEB, check=True, capture_output=True, timeout=120)
    assert out.read_bytes() == BUNDLE.read_bytes(), "rebuild with: cd web/uppy && npm ci && npm run build"
