"""The committed page bundle (app.js, app.css) is what its pinned sources build (esbuild is deterministic).

Runs where web/uppy has been installed (``cd web/uppy && npm ci``); elsewhere it is
skipped, because the suite must not need the npm registry: the page serves the
committed bundle, and this check keeps it honest whenever a developer rebuilds.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from testkit.paths import REPO

WEB = REPO / "web" / "uppy"
STATIC = REPO / "advanced_notes" / "static" / "app"
BUNDLE = STATIC / "app.js"
#: The exact pins; the page shows Uppy's and its plugins' (their VERSION), by package.
PINS = {"@uppy/core": "6.3.1", "@uppy/dashboard": "6.0.3", "@uppy/audio": "4.0.0", "@uppy/aws-s3": "6.3.1"}
PINS["wavesurfer.js"] = "8.0.1"


def test_the_lockfile_pins_the_versions_the_page_reports():
    lock = json.loads((WEB / "package-lock.json").read_text())
    package = json.loads((WEB / "package.json").read_text())
    assert package["dependencies"] == PINS  # exact pins, no ranges
    for name, version in package["dependencies"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    bundle = BUNDLE.read_text()
    for name, version in PINS.items():
        if name.startswith("@uppy/"):
            assert f'"{version}"' in bundle  # the VERSION strings the page shows


@pytest.mark.skipif(not (WEB / "node_modules" / ".bin" / "esbuild").exists(), reason="web/uppy not installed (npm ci)")
def test_the_committed_bundle_is_rebuilt_byte_for_byte(tmp_path):
    out = tmp_path / "app.js"
    esbuild = WEB / "node_modules" / ".bin" / "esbuild"
    script = json.loads((WEB / "package.json").read_text())["scripts"]["build"]
    args = script.split()[1:]
    args = [f"--outfile={out}" if a.startswith("--outfile=") else a for a in args]
    assert shutil.which("node"), "node is needed to run esbuild"
    subprocess.run([str(esbuild), *args], cwd=WEB, check=True, capture_output=True, timeout=120)
    for name in ("app.js", "app.css", "app.js.LEGAL.txt"):
        built = (tmp_path / name).read_bytes()
        assert built == (STATIC / name).read_bytes(), f"{name}: rebuild with make uppy"
