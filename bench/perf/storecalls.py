"""Count and time every store API call and every presign botocore makes (in-process profiles only).

:func:`install` wraps two botocore methods on their classes, so clients created before
or after (the service's storage adapter, the ceiling's module-level client) are all
counted:

- ``BaseClient._make_api_call``: every S3 request a client sends (``HeadObject``,
  ``GetObject``, ...), each one round trip to the store; counted by operation, with the
  time spent in it (network, the store's work, reading the body is outside it for a GET);
- ``add_auth`` of botocore's query-string signers (``SigV4QueryAuth``, so also
  ``S3SigV4QueryAuth`` and any subclass, and SigV2's ``HmacV1QueryAuth``): every presigned
  URL, i.e. every signature put into a URL. The client method ``generate_presigned_url``
  ends there, and so does a storage adapter that builds the URL unsigned and signs it with
  botocore's signer itself (at a chosen time, say), while a URL built unsigned is not a
  presign and headers signed for an API call (HEAD, GET) are another signer. A service
  that caches signed URLs signs less than once per request: the count is the real number
  of signatures made;
- the service's own query signer (``advanced_notes.adapters.storage.signing.sign_query_at``,
  which signs every URL of the storage adapter without botocore's signer object), wrapped
  where the adapter's modules look it up: every URL it signs is a presign too.
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
    """Wrap botocore's API call and query-string signing methods (idempotent)."""
    from botocore.auth import HmacV1QueryAuth, SigV4QueryAuth
    from botocore.client import BaseClient

    api_call = BaseClient._make_api_call
    if getattr(api_call, "_counted", False):
        return

    def counted_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        started = time.perf_counter()
        try:
            return api_call(self, operation_name, api_params)
        finally:
            STATS["calls"] += 1
            STATS["seconds"] += time.perf_counter() - started
            KINDS[operation_name] = KINDS.get(operation_name, 0) + 1

    def counted_signer(add_auth: Any) -> Any:
        def counted_presign(self: Any, request: Any) -> Any:
            STATS["presigns"] += 1
            return add_auth(self, request)

        return counted_presign

    counted_api_call._counted = True  # type: ignore[attr-defined]
    BaseClient._make_api_call = counted_api_call  # type: ignore[method-assign]
    # Set on the query signers themselves (they inherit add_auth): subclasses inherit the
    # count, and the header signers of API calls (S3SigV4Auth, HmacV1Auth) keep theirs.
    for signer in (SigV4QueryAuth, HmacV1QueryAuth):
        signer.add_auth = counted_signer(signer.add_auth)  # type: ignore[method-assign]
    _count_service_signer()


def _count_service_signer() -> None:
    """Count the storage adapter's own query signer, in every module that calls it by name."""
    import importlib

    try:
        signing = importlib.import_module("advanced_notes.adapters.storage.signing")
    except ImportError:  # a process without the service (the ceiling alone)
        return
    sign = signing.sign_query_at

    def counted_sign(*args: Any, **kwargs: Any) -> Any:
        STATS["presigns"] += 1
        return sign(*args, **kwargs)

    for name in ("signing", "objects", "multipart", "__init__"):
        module_name = "advanced_notes.adapters.storage" + ("" if name == "__init__" else f".{name}")
        module = importlib.import_module(module_name)
        if getattr(module, "sign_query_at", None) is sign:
            module.sign_query_at = counted_sign
