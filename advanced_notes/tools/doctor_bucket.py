"""The storage doctor's checks of the bucket's configuration: its CORS rules for the
browser origins in CORS_ORIGINS, and whether it publishes ObjectCreated events for our
keys (docs/events.md)."""

from __future__ import annotations

from collections.abc import Iterator

from advanced_notes.adapters.storage import S3Storage
from advanced_notes.domain.bucket_cors import cors_problems
from advanced_notes.domain.errors import StorageUnavailable
from advanced_notes.settings import Settings
from advanced_notes.tools.doctor_report import FAIL, INFO, OK, WARN, Finding


def cors_findings(storage: S3Storage, settings: Settings) -> Iterator[Finding]:
    """Whether browsers at ``settings.cors_origins`` may PUT and GET (the bucket's CORS rules)."""
    origins = settings.cors_origins
    try:
        rules = storage.get_cors_rules()
    except StorageUnavailable as exc:
        yield Finding(
            WARN,
            "bucket CORS",
            f"could not read the rules: {exc.message}",
            "Grant s3:GetBucketCORS to check them, or check them in the provider's console.",
        )
        return
    if not origins:
        yield Finding(
            INFO,
            "bucket CORS",
            f"{len(rules or [])} rule(s); CORS_ORIGINS is empty, so browser uploads are not checked",
            "Set CORS_ORIGINS to your web app's origins to check them.",
        )
        return
    problems = cors_problems(rules, origins)
    for problem in problems:
        yield Finding(
            FAIL, "bucket CORS", problem, "Run `advanced-notes storage cors --apply` to write the minimal rules."
        )
    if not problems:
        yield Finding(OK, "bucket CORS", f"browsers at {', '.join(origins)} may PUT and GET, ETag exposed")


def notification_findings(storage: S3Storage, settings: Settings) -> Iterator[Finding]:
    """Whether the bucket publishes ObjectCreated events that cover our keys.

    Only S3's own notification configuration can be read here (AWS, MinIO's
    ``mc event``, moto); R2 (Queues) and Spaces (none) cannot say, and uploads nobody
    completes are then finished by the sweeper or the store's own event setup.
    """
    folder = f"{settings.key_prefix}/audio-clips/"
    fallback = (
        f"Uploads whose client never calls complete are finished by the sweeper once older than "
        f"{settings.sweep_complete_grace_seconds} s (run `sweep --apply` from cron); for seconds "
        "instead, see docs/events.md."
    )
    try:
        config = storage.get_notification_configuration()
    except StorageUnavailable as exc:
        yield Finding(INFO, "bucket notifications", f"the store cannot say ({exc.message})", fallback)
        return
    targets = []
    for kind, arn_key in (
        ("QueueConfigurations", "QueueArn"),
        ("TopicConfigurations", "TopicArn"),
        ("LambdaFunctionConfigurations", "LambdaFunctionArn"),
    ):
        for entry in config.get(kind, []):
            events = entry.get("Events", [])
            created = any(e in ("s3:ObjectCreated:*", "s3:*") or e.startswith("s3:ObjectCreated:") for e in events)
            rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            prefix = next((r["Value"] for r in rules if r.get("Name", "").lower() == "prefix"), "")
            suffix = next((r["Value"] for r in rules if r.get("Name", "").lower() == "suffix"), "")
            if created and folder.startswith(prefix) and not suffix:
                targets.append(entry.get(arn_key, "?"))
    if config.get("EventBridgeConfiguration"):
        targets.append("EventBridge")
    if targets:
        yield Finding(OK, "bucket notifications", f"ObjectCreated events for {folder} go to {', '.join(targets)}")
        if not settings.s3_events_queue_url and not settings.storage_events_token:
            yield Finding(
                WARN,
                "event consumer",
                "the bucket publishes events but neither S3_EVENTS_QUEUE_URL nor STORAGE_EVENTS_TOKEN is set",
                "Run `advanced-notes events consume` with S3_EVENTS_QUEUE_URL, or set STORAGE_EVENTS_TOKEN.",
            )
        return
    yield Finding(
        WARN if settings.s3_events_queue_url else INFO,
        "bucket notifications",
        f"no ObjectCreated notification covers {folder}",
        fallback,
    )
