"""Install hygiene: every folder of the package is packaged.

setuptools warns, on every install, about each folder with files that the ``packages``
configuration leaves out (``advanced_notes.static.demo`` gave about 40 lines).
"""

from __future__ import annotations

import os

from setuptools.config.setupcfg import read_configuration

from testkit.paths import REPO


def test_every_folder_with_files_is_in_the_packages_configuration():
    cwd = os.getcwd()
    os.chdir(REPO)  # find_namespace: resolves against the project folder
    try:
        packages = set(read_configuration(REPO / "setup.cfg")["options"]["packages"])
    finally:
        os.chdir(cwd)
    folders = {
        ".".join(path.relative_to(REPO).parts)
        for path in (REPO / "advanced_notes").rglob("*")
        if path.is_dir() and path.name != "__pycache__" and any(p.is_file() for p in path.iterdir())
    }
    assert folders <= packages, folders - packages
