"""Count and time every store API call and every presign botocore makes (in-process profiles only).

:func:`install` wraps two botocore methods on their classes, so clients created before
or after (the service's storage adapter, the ceiling's module-level client) are all
counted:

- ``BaseClient._make_api_call``: every S3 request a client sends (``HeadObject``,
  ``GetObject``, ...), each one round trip to the store; counted by operation, with the
  time spent in it (network, the store's work, reading the body is outside it for a GET);
- ``RequestSigner.generate_presigned_url``: every presigned URL. The client method
  ``generate_presigned_url`` calls it, and so would any other way of presigning through
  botocore, so a service that signs without the client method is still counted. A
  service that caches signed URLs calls it less than once per request: the count is the
  real number of signatures made.
"""

from __future__ import annotations

import time
from typing import Any

#: Totals since the last :func:`reset`: store API calls, seconds spent in them, presigns.
STATS: dict[str, float] = {"calls": 0, "seconds": 0.0, "presigns": 0}
#: Store API calls by operation name since the last :func:`reset` (``HeadObject``, ``GetObject``...).
KINDS: dict[str, int] = {}


def reset() -> None:
    STATS["calls"], STATS["seconds"], STATS["presigns"] = 0, 0.0, 0
    KINDS.clear()


def install() -> None:
    """Wrap botocore's API call and presign methods (idempotent)."""
    from botocore.client import BaseClient
    from botocore.signers import RequestSigner

    api_call = BaseClient._make_api_call
    if getattr(api_call, "_counted", False):
        return
    presign = RequestSigner.generate_presigned_url

    def counted_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        started = time.perf_counter()
        try:
            return api_call(self, operation_name, api_params)
        finally:
            STATS["calls"] += 1
            STATS["seconds"] += time.perf_counter() - started
            KINDS[operation_name] = KINDS.get(operation_name, 0) + 1

    def counted_presign(self: Any, *args: Any, **kwargs: Any) -> Any:
        STATS["presigns"] += 1
        return presign(self, *args, **kwargs)

    counted_api_call._counted = True  # type: ignore[attr-defined]
    BaseClient._make_api_call = counted_api_call  # type: ignore[method-assign]
    RequestSigner.generate_presigned_url = counted_presign  # type: ignore[method-assign]
