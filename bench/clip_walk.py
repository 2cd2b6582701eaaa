"""The walk of one clip_id from create through complete: which functions, in which files.

Serves the app in process over moto and a fresh SQLite file (``testkit.loopback``), warms
it with one create, PUT and complete, then traces a second create (POST
/api/audio-clips), its PUT and its complete with ``sys.setprofile``, and prints every
stop: a function of the package called from the views onwards. Calls that a library makes
back into the package (type decorators, parsers reading through a ranged reader) are not
stops; neither is anything below the first call into ``domain/``, the storage adapter,
``adapters/db.py`` or the metrics, whose insides are not part of the clip's path.

Figures: stops, distinct files, and returns (arriving in a file already left earlier in
the walk), for the whole walk and for its services and adapters alone.

    .venv/bin/python -m bench.clip_walk [--file note.m4a]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from testkit.live import put_upload, read_manifest
from testkit.loopback import serving

PACKAGE = os.sep + "advanced_notes" + os.sep
VIEWS = ("create_clip", "complete_clip")
#: Entered as one stop each, never descended into.
LEAVES = ("domain/", "adapters/storage", "adapters/db", "services/telemetry")
CO_GENERATOR = 0x20


def traced(call: Callable[[], Any]) -> tuple[Any, list[tuple[str, str]]]:
    """Run ``call``; return its result and its stops as (function, file under the package)."""
    stops: list[tuple[str, str]] = []
    view: list[FrameType | None] = [None]
    skipping: list[FrameType | None] = [None]

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        code = frame.f_code
        if event == "return":
            if frame is skipping[0]:
                skipping[0] = None
            if frame is view[0]:
                view[0] = None
            return
        if event != "call" or PACKAGE not in code.co_filename or code.co_name.startswith("<"):
            return
        where = code.co_filename.split(PACKAGE, 1)[1]
        if view[0] is None:
            if where != "api/clips.py" or code.co_name not in VIEWS:
                return
            view[0] = frame
        if skipping[0] is not None or (code.co_flags & CO_GENERATOR and frame.f_lasti > 0):
            return  # inside a leaf, or a generator resuming
        caller = frame.f_back.f_code.co_filename if frame.f_back else ""
        if frame is not view[0] and PACKAGE not in caller and "contextlib" not in caller:
            skipping[0] = frame  # a library calling back into the package
            return
        stops.append((code.co_qualname, where))
        if where.startswith(LEAVES):
            skipping[0] = frame

    sys.setprofile(profile)
    try:
        result = call()
    finally:
        sys.setprofile(None)
    return result, stops


def figures(stops: list[tuple[str, str]]) -> tuple[int, int, int]:
    """(stops, distinct files, returns to a file already left)."""
    sequence: list[str] = []
    for _, where in stops:
        if not sequence or sequence[-1] != where:
            sequence.append(where)
    returns = sum(1 for i, where in enumerate(sequence) if where in sequence[:i])
    return len(stops), len(set(sequence)), returns


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default="note.m4a", help="an audio fixture (MANIFEST.tsv)")
    audio = read_manifest()[parser.parse_args(argv).file]
    body = {"mime_type": audio.mime_type, "bytes": audio.size}
    with serving() as loopback:
        client = loopback.app.test_client()
        headers = {"Authorization": f"Bearer {loopback.token}"}

        def create() -> Any:
            return client.post("/api/audio-clips", json=body, headers=headers).get_json()

        def complete(clip_id: str) -> Any:
            return client.post(f"/api/audio-clips/{clip_id}/complete", headers=headers)

        warm = create()  # statements and caches built on first use are not steps of the walk
        put_upload(warm["upload"], audio.data).raise_for_status()
        complete(warm["clip"]["id"])
        created, walk = traced(create)
        put_upload(created["upload"], audio.data).raise_for_status()
        answer, more = traced(lambda: complete(created["clip"]["id"]))
        assert answer.status_code == 200, answer.get_json()
    walk += more
    for number, (function, where) in enumerate(walk, 1):
        print(f"{number:3d} {function}  ({where})")
    inner = [stop for stop in walk if stop[1].startswith(("services/", "adapters/"))]
    for label, stops in (("whole walk", walk), ("services and adapters", inner)):
        count, files, returns = figures(stops)
        print(f"{label}: {count} stops in {files} files, {returns} returns")


if __name__ == "__main__":
    main()
