"""S3-shaped answers for clients that speak S3's multipart protocol themselves (Uppy 6's ``signRequest``).

``@uppy/aws-s3`` 6 sends every multipart step as an S3 request to a URL its
``signRequest`` hook returns, and reads S3's XML answers. The part PUTs go straight to
the bucket (URLs from ``POST .../multipart/parts``); the steps that must stay on the
server are pointed here, with the bearer token in the hook's ``headers``:

- ``POST .../multipart/s3``: CreateMultipartUpload's answer for the clip's upload, which
  the server created with the clip (the upload id and key are the server's);
- ``GET .../multipart/s3``: ListParts' answer (what the store holds, for resuming);
- ``POST .../multipart/s3/complete``: CompleteMultipartUpload: the parts are listed on
  the server (the client's part list is ignored), assembled and verified exactly as by
  ``POST .../complete``; the answer is S3's CompleteMultipartUploadResult.

Abort uses ``DELETE .../multipart`` as it is. Errors keep the API's JSON error shape
(Uppy reports the status). See docs/multipart.md.
"""

from __future__ import annotations

import uuid
from typing import Any
from xml.sax.saxutils import escape

from flask import Response

from advanced_notes.api import links
from advanced_notes.api.auth import current_owner
from advanced_notes.api.common import NO_CLIP, ApiBlueprint, authenticated_blueprint, error_responses
from advanced_notes.api.context import current_services

#: The XML namespace of S3's API answers, which S3 clients expect on the root element.
_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _xml(root: str, fields: list[tuple[str, str | int]] | str) -> Response:
    body = fields if isinstance(fields, str) else "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields)
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{_XMLNS}">{body}</{root}>',
        mimetype="application/xml",
    )


def _xml_200(next_steps: dict[str, Any]) -> dict[str, Any]:
    """The documented 200 of an S3-shaped step: S3's XML, and the links to the next steps."""
    return {"200": {"description": "S3's XML answer.", "content": {"application/xml": {}}, "links": next_steps}}


def multipart_s3_blueprint() -> ApiBlueprint:
    """The S3-shaped multipart blueprint of one app (built per app by ``init_api``).

    Returns:
        a new blueprint whose every route requires a bearer token and answers S3's XML.
    """
    blp = authenticated_blueprint(
        "multipart-s3", __name__, "S3-shaped multipart steps for S3 protocol clients (Uppy 6 signRequest)."
    )

    @blp.route("/audio-clips/<uuid:clip_id>/multipart/s3", methods=["POST"])
    @blp.doc(responses=_xml_200(links.S3_INITIATED))
    @error_responses(blp, {404: NO_CLIP, 409: "conflict: the clip is not a pending multipart clip."})
    def initiate(clip_id: uuid.UUID) -> Response:
        """CreateMultipartUpload's answer (InitiateMultipartUploadResult) for the clip's own upload."""
        clip = current_services().multipart.open_clip(current_owner(), clip_id)
        return _xml(
            "InitiateMultipartUploadResult",
            [
                ("Bucket", current_services().settings.s3_bucket),
                ("Key", clip.storage_key),
                ("UploadId", clip.multipart_upload_id or ""),
            ],
        )

    @blp.route("/audio-clips/<uuid:clip_id>/multipart/s3", methods=["GET"])
    @blp.doc(responses=_xml_200(links.S3_LISTED))
    @error_responses(blp, {404: NO_CLIP, 409: "conflict: the clip is not a pending multipart clip."})
    def list_parts(clip_id: uuid.UUID) -> Response:
        """ListParts' answer (ListPartsResult): the parts the store holds."""
        clip, parts = current_services().multipart.list_parts(current_owner(), clip_id)
        body = f"<Key>{escape(clip.storage_key)}</Key><UploadId>{escape(clip.multipart_upload_id or '')}</UploadId>"
        body += "".join(
            f"<Part><PartNumber>{p.part_number}</PartNumber><ETag>{escape(p.etag)}</ETag><Size>{p.size}</Size></Part>"
            for p in parts
        )
        return _xml("ListPartsResult", body)

    @blp.route("/audio-clips/<uuid:clip_id>/multipart/s3/complete", methods=["POST"])
    @blp.doc(responses=_xml_200(links.S3_COMPLETED))
    @error_responses(
        blp,
        {
            404: NO_CLIP,
            409: "upload_incomplete, upload_missing or conflict, as POST .../complete.",
            422: "upload_rejected, as POST .../complete.",
        },
    )
    def complete(clip_id: uuid.UUID) -> Response:
        """CompleteMultipartUpload: assemble from the parts the store holds, verify, answer S3's result."""
        clip = current_services().uploads.complete(current_owner(), clip_id)
        return _xml(
            "CompleteMultipartUploadResult",
            [
                ("Location", f"/api/audio-clips/{clip.id}"),
                ("Bucket", current_services().settings.s3_bucket),
                ("Key", clip.storage_key),
                ("ETag", clip.etag or ""),
            ],
        )

    return blp
