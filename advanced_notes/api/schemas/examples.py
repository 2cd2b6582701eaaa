"""Examples for the OpenAPI document (what ``/api/docs`` shows); no code reads them."""

from __future__ import annotations

_CLIP_ID = "3f0c6a2e-8d4b-4a7e-9b1c-2d5e6f708192"
_KEY = f"prod/audio-clips/{_CLIP_ID}.m4a"
CLIP_EXAMPLE = {
    "id": _CLIP_ID,
    "note_id": "note-42",
    "status": "ready",
    "mime_type": "audio/mp4",
    "bytes": 54692,
    "duration_ms": 6300,
    "measured_duration_ms": 6312,
    "checksum_sha256": "u4kJ78aX//hbjMpcy/q+JelE8WdxZdF4I7pWxUC3Nbg=",
    "storage_key": _KEY,
    "etag": '"712b298890187aa7b47bc2fc3f9acdb0"',
    "stored_bytes": 54692,
    "created_at": "2026-11-21T08:10:08.188Z",
    "updated_at": "2026-11-21T08:10:09.214Z",
    "completed_at": "2026-11-21T08:10:09.214Z",
    "processing": {
        "status": "done",
        "reason": None,
        "renditions": ["original"],
        "skipped": {
            "seekable": "not WebM/Matroska: its container indexes itself",
            "universal": "already AAC-LC in MP4",
        },
        "duration_ms": 6308,
        "loudness_lufs": -19.3,
        "true_peak_dbtp": -1.2,
    },
}
PENDING_EXAMPLE = {
    **CLIP_EXAMPLE,
    "processing": None,
    "status": "pending",
    "measured_duration_ms": None,
    "etag": None,
    "stored_bytes": None,
    "completed_at": None,
    "updated_at": CLIP_EXAMPLE["created_at"],
}
UPLOAD_EXAMPLE = {
    "method": "PUT",
    "storage_key": _KEY,
    "expires_at": "2026-11-21T08:25:08.000Z",
    "url": f"https://advanced-notes-audio.s3.amazonaws.com/{_KEY}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIA...%2F20261121%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261121T081008Z"
    "&X-Amz-Expires=900&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bx-amz-checksum-sha256"
    "&X-Amz-Signature=...",
    "headers": {
        "Content-Type": "audio/mp4",
        "Content-Length": "54692",
        "x-amz-checksum-sha256": "u4kJ78aX//hbjMpcy/q+JelE8WdxZdF4I7pWxUC3Nbg=",
    },
}
PLAYBACK_EXAMPLE = {
    "url": f"https://advanced-notes-audio.s3.amazonaws.com/{_KEY}?response-content-type=audio%2Fmp4"
    "&response-cache-control=private%2C%20max-age%3D600%2C%20immutable&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Date=20261121T081000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=...",
    "expires_at": "2026-11-21T08:25:00.000Z",
}

# A multipart clip (a WAV file uploaded in three parts).
_MP_KEY = f"prod/audio-clips/{_CLIP_ID}.wav"
_UPLOAD_ID = "2~n0tS3cR3tUpl0adId"
MULTIPART_SESSION_EXAMPLE = {
    "upload_id": _UPLOAD_ID,
    "storage_key": _MP_KEY,
    "part_size": 8388608,
    "part_count": 3,
    "expires_at": "2026-11-22T08:10:08.188Z",
}
SIGNED_PARTS_EXAMPLE = {
    "parts": [
        {
            "part_number": 1,
            "method": "PUT",
            "url": f"https://advanced-notes-audio.s3.amazonaws.com/{_MP_KEY}?partNumber=1&uploadId={_UPLOAD_ID}"
            "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA...%2F20261121%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20261121T081008Z&X-Amz-Expires=900&X-Amz-SignedHeaders=content-length%3Bhost"
            "&X-Amz-Signature=...",
            "headers": {"Content-Length": "8388608"},
            "expires_at": "2026-11-21T08:25:08.000Z",
        }
    ]
}
STORED_PARTS_EXAMPLE = {
    "multipart": MULTIPART_SESSION_EXAMPLE,
    "parts": [
        {"part_number": 1, "size": 8388608, "etag": '"5f363e0e58a95f06cbe9bbc662c5dfb6"'},
        {"part_number": 3, "size": 4194304, "etag": '"b1946ac92492d2347c6235b4d2611184"'},
    ],
    "missing_parts": [2],
}
ABORTED_EXAMPLE = {"clip_id": _CLIP_ID, "aborted": True}

# A MinIO webhook delivery of one ObjectCreated:Put record.
STORAGE_EVENT_EXAMPLE = {
    "EventName": "s3:ObjectCreated:Put",
    "Key": "advanced-notes-audio/prod/audio-clips/3f0c6a2e-8d4b-4a7e-9b1c-2d5e6f708192.m4a",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "eventName": "s3:ObjectCreated:Put",
            "s3": {
                "bucket": {"name": "advanced-notes-audio"},
                "object": {"key": "prod%2Faudio-clips%2F3f0c6a2e-8d4b-4a7e-9b1c-2d5e6f708192.m4a", "size": 48213},
            },
        }
    ],
}
