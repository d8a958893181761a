"""Where AWS calls go: an endpoint (emulator) or real AWS, with region and credentials."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

DEFAULT_REGION = "us-east-1"
# Emulators accept any credentials, but boto3 refuses to sign without some.
EMULATOR_ACCESS_KEY = "testing"
EMULATOR_SECRET_KEY = "testing"  # noqa: S105 - emulators accept any secret


@dataclass(frozen=True)
class AwsTarget:
    """An AWS API endpoint plus what boto3 needs to talk to it.

    ``endpoint_url=None`` means real AWS with the default credential chain.
    """

    endpoint_url: str | None
    region: str = DEFAULT_REGION
    access_key_id: str | None = EMULATOR_ACCESS_KEY
    secret_access_key: str | None = field(default=EMULATOR_SECRET_KEY, repr=False)

    @property
    def is_loopback(self) -> bool:
        return self.endpoint_url is not None and is_loopback_url(self.endpoint_url)

    @cached_property
    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )

    def client(self, service: str, **config: Any) -> Any:
        settings: dict[str, Any] = {
            "retries": {"mode": "standard", "max_attempts": 5},
            "max_pool_connections": 32,
            **config,
        }
        cfg = Config(**settings)
        return self.session.client(service, endpoint_url=self.endpoint_url, config=cfg)  # type: ignore[call-overload]

    def s3(self) -> S3Client:
        return self.client("s3")  # type: ignore[no-any-return]

    def sns(self) -> SNSClient:
        return self.client("sns")  # type: ignore[no-any-return]

    def sqs(self) -> SQSClient:
        return self.client("sqs")  # type: ignore[no-any-return]

    def iam(self) -> IAMClient:
        return self.client("iam")  # type: ignore[no-any-return]

    def lambda_(self) -> LambdaClient:
        return self.client("lambda")  # type: ignore[no-any-return]

    def logs(self) -> CloudWatchLogsClient:
        return self.client("logs")  # type: ignore[no-any-return]

    def environment(self) -> dict[str, str]:
        """Environment variables that point boto3 in another process at this target."""
        env = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        if self.access_key_id and self.secret_access_key:
            env["AWS_ACCESS_KEY_ID"] = self.access_key_id
            env["AWS_SECRET_ACCESS_KEY"] = self.secret_access_key
        return env

    def to_dict(self) -> dict[str, str | None]:
        """Serialisable form, for handing the target to another process (secrets included)."""
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> AwsTarget:
        return cls(
            endpoint_url=data.get("endpoint_url"),
            region=data.get("region") or DEFAULT_REGION,
            access_key_id=data.get("access_key_id"),
            secret_access_key=data.get("secret_access_key"),
        )


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is localhost or a loopback address (127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
