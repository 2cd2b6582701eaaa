"""Freed heap memory goes back to the system after rare costly work (adapters.heap).

The effect on a web worker after crafted files is measured by
``bench/perf/focus.py hostile``; here, that the call reaches glibc and releases pages.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from testkit.paths import REPO

PROGRAM = """
import json
from advanced_notes.adapters.heap import release_free_heap

def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))

# 64 MiB of 1000-byte blocks (past pymalloc's 512, below glibc's mmap threshold: its heap),
# then one block above them, so that freeing them leaves free chunks below the heap's top
# that glibc keeps for reuse.
blocks = [bytes(1000) for _ in range(65_536)]
keeper = bytes(1000)
held = rss_kib()
del blocks
freed = rss_kib()
released = release_free_heap()
print(json.dumps({"held": held, "freed": freed, "after": rss_kib(), "released": released}))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_heap_pages_go_back_to_the_system():
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(result.stdout)
    assert seen["freed"] - seen["after"] > 32 * 1024, seen  # KiB: most of the 64 MiB
    assert seen["released"] is True, seen
