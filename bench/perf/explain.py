"""EXPLAIN (ANALYZE, BUFFERS) of the service's own SQL for note audio, playback and list.

    python explain.py SPEC.json OUT.json

SPEC: ``{"env": {...service settings...}, "requests": {endpoint: [loadgen request, expected status]}}``.

Runs each request in-process through the real app with a SQLAlchemy
``before_cursor_execute`` listener, so the statement and parameters explained are
exactly what the service sent (not a hand-written equivalent), then explains them on
the same connection pool. Per endpoint the last ``SELECT ... FROM audio_clips`` of the
request is explained (for create: the per-owner count of pending clips of the quota
check; a create adds one pending row). Each statement is explained twice and the second plan is
kept: the first one pays for cold caches, the same as the warm-up of a load run.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from inproc import call, make_environ, setup_environment

from advanced_notes.api.context import services_of

_EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")
_PLANNING = re.compile(r"Planning Time: ([0-9.]+) ms")
_INDEX = re.compile(
    r"(Index Only Scan|Index Scan Backward|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)"
)


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        spec = json.load(f)
    setup_environment(spec["env"])
    from sqlalchemy import event

    from advanced_notes.app import create_app

    app = create_app()
    engine = services_of(app).db.engine
    captured: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM audio_clips" in statement:
            captured.append((statement, parameters))

    out: dict[str, Any] = {}
    for endpoint, (item, expect) in spec["requests"].items():
        captured.clear()
        call(app, make_environ(item))  # warm-up (pool, caches)
        first = list(captured)
        captured.clear()
        status = call(app, make_environ(item))
        # A service that caches (signed URLs, say) may send less the second time: the first
        # call's statement is then the one to explain.
        statements = captured or first
        if status != expect or not statements:
            raise RuntimeError(f"{endpoint}: status {status}, {len(statements)} statements captured")
        statement, parameters = statements[-1]
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            literal = cur.mogrify(statement, parameters).decode()
            for _ in range(2):
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                plan = "\n".join(row[0] for row in cur.fetchall())
            raw.rollback()
        finally:
            raw.close()
        execution = _EXECUTION.search(plan)
        planning = _PLANNING.search(plan)
        out[endpoint] = {
            "sql": literal,
            "plan": plan,
            "statements_per_request": len(captured),
            "execution_ms": float(execution.group(1)) if execution else None,
            "planning_ms": float(planning.group(1)) if planning else None,
            "indexes": sorted({m.group(2) for m in _INDEX.finditer(plan)}),
            "seq_scan": "Seq Scan" in plan,
        }
    with open(argv[2], "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
