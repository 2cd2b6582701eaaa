"""The S3 storage adapter: with the SQS adapter (adapters/queue.py), the only importer of boto3/botocore.

One module a job, all on one connection (one botocore session and its clients):

- :mod:`.connection`: the session and clients, the shared presigning, and the one place
  every botocore failure becomes :class:`~advanced_notes.domain.errors.StorageUnavailable`
  (callers never see botocore types);
- :mod:`.objects`: the request path: presigned PUT and playback URLs, HEAD, ranged reads,
  listing, delete;
- :mod:`.signing`: SigV4 query signing at a chosen time (the playback URL's window);
- :mod:`.multipart`: multipart uploads;
- :mod:`.transfers`: the processing worker's file downloads and uploads (boto3's
  managed transfers, imported on the first one);
- :mod:`.botodata`: botocore's endpoint table cut to the services the adapters call;
- :mod:`.admin`: bucket administration for the storage doctor, the dev stack and tests.

:class:`S3Storage` is the one object the services, tools and worker are given: built once
per process and shared by every request.
"""

from __future__ import annotations

from advanced_notes.adapters.storage.admin import BucketAdmin
from advanced_notes.adapters.storage.connection import PresignedRequest
from advanced_notes.adapters.storage.multipart import InProgressUpload, MultipartUploads, PartsRefused, UploadedPart
from advanced_notes.adapters.storage.objects import GET_CACHE_ENTRIES, ListedObject, ObjectInfo, ObjectRequests
from advanced_notes.adapters.storage.signing import sign_query_at
from advanced_notes.adapters.storage.transfers import FileTransfers

__all__ = [
    "GET_CACHE_ENTRIES",
    "InProgressUpload",
    "ListedObject",
    "ObjectInfo",
    "PartsRefused",
    "PresignedRequest",
    "S3Storage",
    "UploadedPart",
    "sign_query_at",
]


class S3Storage(ObjectRequests, MultipartUploads, FileTransfers, BucketAdmin):
    """One bucket with every job of the adapter, on one connection.

    Each job's class extends :class:`~.connection.StoreConnection`; combining them here
    gives every caller one object and the process one set of clients (the connection's
    ``__init__`` runs once, through :class:`~.objects.ObjectRequests`).

    Args:
        settings: bucket, region, credentials, endpoints, addressing style, expiries.
        clock: the current time (aware UTC) for playback URLs; tests pass a fake one.
    """
