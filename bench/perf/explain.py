"""EXPLAIN (ANALYZE, BUFFERS) of the service's own SQL for note audio, playback, list and create.

    python explain.py SPEC.json OUT.json

SPEC: ``{"env": {...service settings...}, "requests": {endpoint: [loadgen request, expected status]}}``.

Runs each request in-process through the real app with a SQLAlchemy
``before_cursor_execute`` listener, so the statement and parameters explained are
exactly what the service sent (not a hand-written equivalent), then explains them on
the same connection pool. Per endpoint the last statement of the request that reads
``audio_clips`` or inserts into it is explained. A write (create's ``INSERT``, its quota
check included when the service makes it in the same statement) runs in a transaction that
is rolled back, with a new clip id (the request's own is taken; its object key follows) and
no idempotency key, so explaining it changes nothing. Each statement is explained twice and the second plan is
kept: the first one pays for cold caches, the same as the warm-up of a load run.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from typing import Any

from inproc import call, make_environ, setup_environment

from advanced_notes.api.context import services_of

_EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")
_PLANNING = re.compile(r"Planning Time: ([0-9.]+) ms")
_INDEX = re.compile(
    r"(Index Only Scan|Index Scan Backward|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)"
    # An INSERT ... ON CONFLICT finds the conflicting row through its arbiter index.
    r"|(Conflict Arbiter Indexes): (\w+)"
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
        if "FROM audio_clips" in statement or "INSERT INTO audio_clips" in statement:
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
        write = "INSERT INTO audio_clips" in statement
        if write and isinstance(parameters, dict) and "id" in parameters:
            # The request's clip exists: a new id, in every value that carries it (the object
            # key), and no idempotency key, or the unique indexes would refuse the INSERT.
            taken, fresh = str(parameters["id"]), str(uuid.uuid4())
            parameters = {k: v.replace(taken, fresh) if isinstance(v, str) else v for k, v in parameters.items()}
            parameters["id"] = fresh
            if "idempotency_key" in parameters:
                parameters["idempotency_key"] = None
        raw = engine.raw_connection()
        driver = raw.driver_connection  # the psycopg2 connection itself, not the pool's proxy
        autocommit = driver.autocommit  # the service's engine hands out autocommit connections
        try:
            driver.autocommit = False  # each EXPLAIN ANALYZE in a transaction rolled back
            cur = raw.cursor()
            literal = cur.mogrify(statement, parameters).decode()
            for _ in range(2):
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                plan = "\n".join(row[0] for row in cur.fetchall())
                raw.rollback()
        finally:
            driver.autocommit = autocommit
            raw.close()
        execution = _EXECUTION.search(plan)
        planning = _PLANNING.search(plan)
        out[endpoint] = {
            "sql": literal,
            "plan": plan,
            "statements_per_request": len(captured),
            "write": write,
            "execution_ms": float(execution.group(1)) if execution else None,
            "planning_ms": float(planning.group(1)) if planning else None,
            "indexes": sorted({m.group(2) or m.group(4) for m in _INDEX.finditer(plan)}),
            "seq_scan": "Seq Scan" in plan,
        }
    with open(argv[2], "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
