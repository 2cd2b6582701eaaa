"""File transfers of the processing worker: an object to a local file and back, streamed."""

from __future__ import annotations

from pathlib import Path

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from advanced_notes.adapters.storage.connection import MISSING_CODES, StoreConnection, error_code, store_errors
from advanced_notes.domain.errors import ObjectVanished, StorageUnavailable

#: File transfers of the processing worker: 8 MiB parts, at most two in flight and a
#: short write-behind queue, so a transfer holds about 2 x 8 MiB + 8 x 256 KiB whatever
#: the file's size (boto3's defaults allow 10 parts and a 100-chunk queue: some 100 MiB).
FILE_TRANSFER = TransferConfig(
    multipart_threshold=8 * 1024 * 1024,
    multipart_chunksize=8 * 1024 * 1024,
    max_concurrency=2,
    max_io_queue=8,
)


class FileTransfers(StoreConnection):
    """Downloads and uploads whole files with boto3's managed transfers (:data:`FILE_TRANSFER`)."""

    def download_file(self, key: str, path: Path) -> None:
        """Write the object at ``key`` to the local file ``path``, streamed to disk.

        boto3's managed transfer (:data:`FILE_TRANSFER`): ranged GETs in chunks written
        straight to the file (a temporary name, renamed when complete), so memory does not
        grow with the object.

        Raises:
            ObjectVanished: no object at ``key``.
            StorageUnavailable: network failure, timeout, 5xx, access denied.
        """
        try:
            with store_errors("download"):
                self._client.download_file(self.bucket, key, str(path), Config=FILE_TRANSFER)
        except StorageUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and error_code(cause) in MISSING_CODES:
                raise ObjectVanished("The object is no longer in the store.") from cause
            raise

    def upload_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the local file ``path`` at ``key`` with ``Content-Type: content_type``.

        boto3's managed transfer (:data:`FILE_TRANSFER`): read from disk in chunks
        (multipart past 8 MiB), so memory does not grow with the file. Overwrites an object at ``key`` (a retried
        job writes the same bytes again).

        Raises:
            StorageUnavailable: network failure, timeout, 5xx, access denied.
        """
        with store_errors("upload"):
            self._client.upload_file(
                str(path), self.bucket, key, ExtraArgs={"ContentType": content_type}, Config=FILE_TRANSFER
            )
