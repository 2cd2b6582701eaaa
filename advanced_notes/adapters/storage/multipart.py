"""Multipart uploads (docs/multipart.md): start, sign parts, list, assemble, abort, list unfinished."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import ClientError

from advanced_notes.adapters.storage.connection import PresignedRequest, StoreConnection, error_code, store_errors

#: The store no longer knows the multipart upload (completed or aborted). AWS says
#: NoSuchUpload; Ceph radosgw answers ListParts of an aborted upload with NoSuchKey.
NO_UPLOAD_CODES = {"NoSuchUpload", "NoSuchKey"}
#: CompleteMultipartUpload refusals that the client can fix by uploading parts again.
BAD_PARTS_CODES = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall"}


@dataclass(frozen=True)
class UploadedPart:
    """One part the store holds for a multipart upload (ListParts). ``size`` in bytes."""

    part_number: int
    size: int
    etag: str
    last_modified: dt.datetime | None = None


@dataclass(frozen=True)
class InProgressUpload:
    """An unfinished multipart upload (ListMultipartUploads); ``initiated`` aware UTC."""

    key: str
    upload_id: str
    initiated: dt.datetime | None


class PartsRefused(Exception):
    """CompleteMultipartUpload refused the parts (``code``: InvalidPart, EntityTooSmall, ...)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class MultipartUploads(StoreConnection):
    """The multipart calls on the connection's bucket; each raises StorageUnavailable on an outage."""

    def create_multipart_upload(self, key: str, content_type: str) -> str:
        """Start a multipart upload of ``key`` stored as ``content_type``; returns S3's UploadId.

        The content type is fixed here (parts carry none), so complete's HEAD sees it.
        Raises StorageUnavailable.
        """
        with store_errors("CreateMultipartUpload"):
            response = self._client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        return str(response["UploadId"])

    def presign_upload_part(
        self, key: str, upload_id: str, part_number: int, content_length: int, *, expires_seconds: int
    ) -> PresignedRequest:
        """Presign the PUT of part ``part_number`` of exactly ``content_length`` bytes.

        ``Content-Length`` is signed (a strict store refuses another length); the part
        number and upload id are in the query. Makes no network call.
        """
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": part_number,
            "ContentLength": content_length,
        }
        return self._presign("upload_part", params, expires_seconds, "PUT", {"Content-Length": str(content_length)})

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart] | None:
        """Every part the store holds for the upload, by part number (all pages of ListParts).

        Returns:
            the parts, or None when the store no longer knows the upload (completed or aborted).
        Raises:
            StorageUnavailable.
        """
        parts: list[UploadedPart] = []
        with store_errors("ListParts"):
            try:
                for page in self._client.get_paginator("list_parts").paginate(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                ):
                    parts += [
                        UploadedPart(int(p["PartNumber"]), int(p["Size"]), p["ETag"], p.get("LastModified"))
                        for p in page.get("Parts", [])
                    ]
            except ClientError as exc:
                if error_code(exc) in NO_UPLOAD_CODES:
                    return None
                raise
        return sorted(parts, key=lambda p: p.part_number)

    def complete_multipart_upload(self, key: str, upload_id: str, parts: list[UploadedPart]) -> bool:
        """Assemble ``parts`` (in order) into the object at ``key``.

        Returns:
            True when assembled; False when the store no longer knows the upload (a
            concurrent complete finished it, or it was aborted).
        Raises:
            PartsRefused: the store refused the parts (too small, unknown ETag, ...).
            StorageUnavailable.
        """
        listing = [{"PartNumber": p.part_number, "ETag": p.etag} for p in parts]
        with store_errors("CompleteMultipartUpload"):
            try:
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listing}
                )
            except ClientError as exc:
                code = error_code(exc)
                if code in NO_UPLOAD_CODES:
                    return False
                if code in BAD_PARTS_CODES:
                    raise PartsRefused(code) from exc
                raise
        return True

    def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        """Abort the upload and free its parts; False when the store did not know it (already gone)."""
        with store_errors("AbortMultipartUpload"):
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if error_code(exc) in NO_UPLOAD_CODES:
                    return False
                raise
        return True

    def list_multipart_uploads(self, prefix: str) -> Iterator[list[InProgressUpload]]:
        """Pages of the unfinished multipart uploads under ``prefix`` (ListMultipartUploads).

        Raises:
            StorageUnavailable: the listing failed (pages already yielded stay valid).
        """
        pages = self._client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix)
        with store_errors("ListMultipartUploads"):
            for page in pages:
                yield [InProgressUpload(u["Key"], u["UploadId"], u.get("Initiated")) for u in page.get("Uploads", [])]
