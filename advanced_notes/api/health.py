"""``/healthz`` (the process is up) and ``/readyz`` (database and bucket reachable). No auth."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from advanced_notes.api.common import ApiBlueprint
from advanced_notes.api.context import current_services
from advanced_notes.api.schemas import HealthSchema, ReadinessSchema
from advanced_notes.domain.errors import (
    ApiError,
    DatabaseUnavailable,
    StorageUnavailable,
)


def health_blueprint() -> ApiBlueprint:
    """The probes' blueprint of one app (built per app by ``init_api``), at the root, without auth.

    Returns:
        a new blueprint with ``GET /healthz`` and ``GET /readyz``.
    """
    blp = ApiBlueprint("health", __name__, description="Liveness and readiness probes (no auth).")

    @blp.route("/healthz", methods=["GET"])
    @blp.response(200, HealthSchema)
    @blp.doc(security=[])
    def healthz() -> dict[str, Any]:
        """Liveness: 200 while the process serves requests."""
        return {"status": "ok"}

    @blp.route("/readyz", methods=["GET"])
    @blp.response(200, ReadinessSchema)
    @blp.doc(security=[])
    @blp.alt_response(503, description="database_unavailable or storage_unavailable; details say which.")
    def readyz() -> dict[str, Any]:
        """Readiness: 200 when the database answers and the bucket is reachable, else 503."""
        services = current_services()
        checks: dict[str, str] = {}
        failure: ApiError | None = None
        try:
            services.db.ping()
            checks["database"] = "ok"
        except SQLAlchemyError:
            checks["database"] = "unavailable"
            failure = DatabaseUnavailable("The database is unavailable.")
        try:
            services.storage.check_bucket()
            checks["storage"] = "ok"
        except StorageUnavailable as exc:
            checks["storage"] = "unavailable"
            failure = failure or exc
        if failure is not None:
            failure.details = {"checks": checks}
            raise failure
        return {"status": "ready", "checks": checks}

    return blp
