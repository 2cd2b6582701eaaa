"""File transfers of the processing worker: an object to a local file and back, streamed.

boto3's managed transfers (``S3Transfer`` over the connection's client), imported on the
first transfer: web workers never make one, and boto3 with its transfer manager costs
them memory for nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from advanced_notes.adapters.storage.connection import MISSING_CODES, StoreConnection, error_code, store_errors
from advanced_notes.domain.errors import ObjectVanished, StorageUnavailable

#: Part size and the size from which a transfer goes in parts, bytes.
PART_BYTES = 8 * 1024 * 1024
#: Parts in flight at once, and chunks queued for the file writer. A transfer so holds
#: about 2 x 8 MiB + 8 x 256 KiB whatever the file's size (boto3's defaults allow 10
#: parts and a 100-chunk queue: some 100 MiB).
PARTS_IN_FLIGHT = 2
QUEUED_CHUNKS = 8


@cache
def _boto3_transfer() -> tuple[Any, Any, tuple[type[Exception], ...]]:
    """boto3's ``S3Transfer``, the worker's ``TransferConfig`` and boto3's own transfer failures."""
    from boto3.exceptions import Boto3Error
    from boto3.s3.transfer import S3Transfer, TransferConfig

    config = TransferConfig(
        multipart_threshold=PART_BYTES,
        multipart_chunksize=PART_BYTES,
        max_concurrency=PARTS_IN_FLIGHT,
        max_io_queue=QUEUED_CHUNKS,
    )
    # Boto3Error: S3UploadFailedError, RetriesExceededError (the store could not be reached).
    return S3Transfer, config, (Boto3Error,)


class FileTransfers(StoreConnection):
    """Downloads and uploads whole files with boto3's managed transfers, in bounded memory."""

    @contextmanager
    def _transfer(self, action: str) -> Iterator[Any]:
        transfer_class, config, failures = _boto3_transfer()
        with store_errors(action, unreachable=failures), transfer_class(self._client, config) as transfer:
            yield transfer

    def download_file(self, key: str, path: Path) -> None:
        """Write the object at ``key`` to the local file ``path``, streamed to disk.

        Ranged GETs of :data:`PART_BYTES` written straight to the file (a temporary name,
        renamed when complete), so memory does not grow with the object.

        Raises:
            ObjectVanished: no object at ``key``.
            StorageUnavailable: network failure, timeout, 5xx, access denied.
        """
        try:
            with self._transfer("download") as transfer:
                transfer.download_file(self.bucket, key, str(path))
        except StorageUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause) in MISSING_CODES:
                raise ObjectVanished("The object is no longer in the store.") from cause
            raise

    def upload_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the local file ``path`` at ``key`` with ``Content-Type: content_type``.

        Read from disk in chunks (in parts from :data:`PART_BYTES` on), so memory does not
        grow with the file. Overwrites an object at ``key`` (a retried job writes the same
        bytes again).

        Raises:
            StorageUnavailable: network failure, timeout, 5xx, access denied.
        """
        with self._transfer("upload") as transfer:
            transfer.upload_file(str(path), self.bucket, key, extra_args={"ContentType": content_type})
