"""The Database adapter's two modes on the real database: atomic transactions, one-statement autocommit."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from advanced_notes.api.context import services_of


def _probes(db) -> int:
    with db.statement() as conn:
        return conn.execute(text("SELECT count(*) FROM owner_usage WHERE owner_id LIKE 'db-probe%'")).scalar_one()


def test_a_transaction_is_atomic_and_statements_commit_alone(app):
    db = services_of(app).db
    with pytest.raises(RuntimeError), db.transaction() as session:
        session.execute(text("INSERT INTO owner_usage VALUES ('db-probe-1', 0, 0)"))
        raise RuntimeError("roll back")
    assert _probes(db) == 0
    with db.statement(write=True) as conn:
        conn.execute(text("INSERT INTO owner_usage VALUES ('db-probe-2', 0, 0)"))
    assert _probes(db) == 1
    if db.engine.dialect.name == "postgresql":
        # Hot paths: no BEGIN/COMMIT round trips and no mode switch per checkout; transactions switch.
        with db.statement() as conn:
            assert conn.connection.dbapi_connection.autocommit is True
        with db.transaction() as session:
            assert session.connection().connection.dbapi_connection.autocommit is False
    with db.statement(write=True) as conn:
        conn.execute(text("DELETE FROM owner_usage WHERE owner_id LIKE 'db-probe%'"))
