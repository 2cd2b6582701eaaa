"""The SQS adapter: receive and delete the bucket's event notification messages.

Besides :mod:`advanced_notes.adapters.storage`, the only module that imports boto3
(setup.cfg's import-linter contract lists the modules that may not). Every botocore
failure leaves as :class:`~advanced_notes.domain.errors.StorageUnavailable`.

The client's endpoint is the queue URL's scheme and host: ``https://sqs.<region>.amazonaws.com``
on AWS, the emulator's address in tests. botocore sends SQS requests to the client's
endpoint (its JSON protocol ignores the host of ``QueueUrl``), so one setting,
``S3_EVENTS_QUEUE_URL``, says both where and which queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config

from advanced_notes.adapters.storage.connection import new_session, store_errors
from advanced_notes.settings import Settings


@dataclass(frozen=True)
class QueueMessage:
    """One received message: its id, the handle that deletes it, its body (text), and
    ``receive_count``: how many times SQS has handed it out, this time included
    (``ApproximateReceiveCount``; 1 when the queue does not say)."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1


def _receive_count(message: dict[str, Any]) -> int:
    raw = message.get("Attributes", {}).get("ApproximateReceiveCount", "1")
    try:
        return max(1, int(raw))
    except (TypeError, ValueError):
        return 1


class SqsQueue:
    """Long-polls one SQS queue.

    Args:
        settings: region and credentials (the same as the bucket's).
        queue_url: the queue (``S3_EVENTS_QUEUE_URL``).
    """

    def __init__(self, settings: Settings, queue_url: str):
        self.queue_url = queue_url
        parts = urlsplit(queue_url)
        session = new_session(settings)
        # The read timeout must outlast a long poll (at most 20 s).
        config = Config(
            region_name=settings.aws_region,
            connect_timeout=settings.s3_connect_timeout_seconds,
            read_timeout=30,
            retries={"total_max_attempts": settings.s3_max_attempts, "mode": "standard"},
        )
        self._client = session.create_client("sqs", endpoint_url=f"{parts.scheme}://{parts.netloc}", config=config)

    def receive(self, max_messages: int = 10, wait_seconds: int = 20) -> list[QueueMessage]:
        """Up to ``max_messages`` (1..10) messages, waiting up to ``wait_seconds`` (0..20) for one.

        Received messages are invisible to other consumers for the queue's visibility
        timeout; one not deleted by then is delivered again (at-least-once).
        Raises:
            StorageUnavailable: the queue could not be reached.
        """
        with store_errors("SQS receive"):
            response = self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        return [
            QueueMessage(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""), _receive_count(m))
            for m in response.get("Messages", [])
        ]

    def delete(self, message: QueueMessage) -> None:
        """Delete a settled message. Raises StorageUnavailable (it is then delivered again)."""
        with store_errors("SQS delete"):
            self._client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle)
