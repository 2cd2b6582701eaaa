"""Bucket administration for the storage doctor, the dev stack and tests.

Reachability, creation, CORS rules, event notifications, how URLs are signed, and a
direct PUT: none of it runs on the request path.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from advanced_notes.adapters.storage.connection import MISSING_CODES, StoreConnection, error_code, store_errors


class BucketAdmin(StoreConnection):
    """Inspects and configures the connection's bucket; each call raises StorageUnavailable on an outage."""

    @property
    def signing(self) -> dict[str, str | None]:
        """How URLs are signed: signature version, region, addressing style, public endpoint."""
        config = self._presigner.meta.config
        return {
            "signature_version": config.signature_version,
            "region": self._presigner.meta.region_name,
            "addressing_style": (config.s3 or {}).get("addressing_style"),
            "endpoint": self._presigner.meta.endpoint_url,
        }

    def check_bucket(self) -> None:
        """HEAD the bucket; raises StorageUnavailable when it cannot be reached or read."""
        with store_errors("HEAD bucket"):
            self._client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (embedded emulator and tests only)."""
        with store_errors("create bucket"):
            try:
                self._client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if error_code(exc) not in MISSING_CODES:
                    raise
            kwargs: dict[str, object] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self._client.create_bucket(**kwargs)

    def get_cors_rules(self) -> list[dict[str, Any]] | None:
        """The bucket's CORS rules (S3's CORSRules shape), or None when it has none."""
        with store_errors("GET bucket CORS"):
            try:
                rules: list[dict[str, Any]] = self._client.get_bucket_cors(Bucket=self.bucket)["CORSRules"]
                return rules
            except ClientError as exc:
                if error_code(exc) == "NoSuchCORSConfiguration":
                    return None
                raise

    def put_cors_rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the bucket's CORS rules (S3's CORSRules shape)."""
        with store_errors("PUT bucket CORS"):
            self._client.put_bucket_cors(Bucket=self.bucket, CORSConfiguration={"CORSRules": rules})

    def put_object(self, key: str, body: bytes, content_type: str) -> None:
        """Store ``body`` at ``key`` directly (tests and the storage check, never the upload path)."""
        with store_errors("PUT"):
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get_notification_configuration(self) -> dict[str, list[dict[str, Any]]]:
        """The bucket's event notifications: ``QueueConfigurations``, ``TopicConfigurations``,
        ``LambdaFunctionConfigurations`` as S3 returns them, and ``EventBridgeConfiguration``
        as a list of zero or one (absent kinds are empty lists).

        Raises:
            StorageUnavailable: the store refused or does not implement the call (R2 and
                Spaces answer NotImplemented or an error: their events are set up elsewhere).
        """
        with store_errors("GET bucket notification"):
            response: dict[str, Any] = dict(self._client.get_bucket_notification_configuration(Bucket=self.bucket))
        kinds = ("QueueConfigurations", "TopicConfigurations", "LambdaFunctionConfigurations")
        config = {kind: [dict(entry) for entry in response.get(kind, [])] for kind in kinds}
        bridge = response.get("EventBridgeConfiguration")
        config["EventBridgeConfiguration"] = [dict(bridge)] if bridge is not None else []
        return config
