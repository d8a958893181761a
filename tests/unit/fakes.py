"""In-memory stand-ins for the boto3 S3 and SQS clients, and builders for the events and errors they meet.

One ``FakeS3`` serves every unit test that drives the healer or the sweep without an emulator:
buckets are plain dicts, every request is logged in ``calls``, ``put_object`` honours
``IfNoneMatch='*'`` as S3 does, and errors can be scripted per key. Calls it does not implement
(a HEAD, a copy, tagging) are an AttributeError, which the healer audits as an error.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from botocore.response import StreamingBody

PROD = "prod-bucket"
BACKUP = "backup-bucket"
QUEUE_URL = "http://127.0.0.1:1/123456789012/healer-dlq"

# One scripted answer: an exception to raise, or None for "answer normally".
Step = BaseException | None


def client_error(code: str, status: int = 400, operation: str = "GetObject") -> ClientError:
    """The ClientError botocore raises for an error response with this code and HTTP status."""
    response = {"Error": {"Code": code, "Message": f"{code} message"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)  # type: ignore[arg-type]


def s3_order(keys: Iterable[str]) -> list[str]:
    """The order S3 lists keys in: by their UTF-8 bytes."""
    return sorted(keys, key=lambda key: key.encode("utf-8"))


# --- S3 ------------------------------------------------------------------------------------------------------


class FakeS3:
    """Buckets in memory answering GetObject, PutObject and a paged ListObjectsV2.

    ``objects`` maps bucket to key to bytes. ``calls`` logs ``(operation, bucket, key)`` in order.
    ``get_errors``/``put_errors`` map a key to the answers of its successive calls (an exception
    or None); the last entry repeats forever. A failing put of a key in ``apply_then_fail`` still
    lands (an ambiguous 503). Keys in ``corrupt`` are served with an ETag that does not match
    their bytes. ``page_sizes`` sets the listing's page sizes per bucket (the last repeats; the
    default is the PageSize asked for) and ``hidden_from_listing`` keys a listing leaves out.
    """

    def __init__(self, objects: Mapping[str, Mapping[str, bytes]], *, content_type: str | None = None) -> None:
        self.objects: dict[str, dict[str, bytes]] = {bucket: dict(keys) for bucket, keys in objects.items()}
        self.content_type = content_type  # sent back by get_object when set
        self.metadata: dict[tuple[str, str], dict[str, str]] = {}
        self.headers: dict[tuple[str, str], dict[str, Any]] = {}  # what put_object got besides its body
        self.calls: list[tuple[str, str, str]] = []
        self.get_errors: dict[str, list[Step]] = {}
        self.put_errors: dict[str, list[Step]] = {}
        self.apply_then_fail: set[str] = set()
        self.corrupt: set[str] = set()
        self.page_sizes: dict[str, list[int]] = {}
        self.page_size_requested: list[int] = []
        self.pages_served: dict[str, int] = dict.fromkeys(self.objects, 0)
        self.hidden_from_listing: dict[str, set[str]] = {}

    @staticmethod
    def _next(script: dict[str, list[Step]], key: str) -> Step:
        steps = script.get(key)
        if not steps:
            return None
        return steps.pop(0) if len(steps) > 1 else steps[0]  # the last step repeats forever

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.calls.append(("get_object", Bucket, Key))
        error = self._next(self.get_errors, Key)
        if error is not None:
            raise error
        if Key not in self.objects[Bucket]:
            raise client_error("NoSuchKey", 404)
        data = self.objects[Bucket][Key]
        digest = hashlib.md5(b"corrupted" if Key in self.corrupt else data).hexdigest()
        response: dict[str, Any] = {
            "Body": StreamingBody(io.BytesIO(data), len(data)),
            "ContentLength": len(data),
            "ETag": f'"{digest}"',
            "Metadata": dict(self.metadata.get((Bucket, Key), {})),
        }
        if self.content_type is not None:
            response["ContentType"] = self.content_type
        return response

    def put_object(
        self,
        *,
        Bucket: str,  # noqa: N803
        Key: str,  # noqa: N803
        Body: bytes,  # noqa: N803
        Metadata: dict[str, str] | None = None,  # noqa: N803
        IfNoneMatch: str | None = None,  # noqa: N803
        **headers: Any,
    ) -> dict[str, Any]:
        self.calls.append(("put_object", Bucket, Key))
        if IfNoneMatch == "*" and Key in self.objects[Bucket]:
            raise client_error("PreconditionFailed", 412, "PutObject")
        error = self._next(self.put_errors, Key)
        if error is not None:
            if Key in self.apply_then_fail:
                self.objects[Bucket][Key] = Body
            raise error
        self.objects[Bucket][Key] = Body
        self.metadata[(Bucket, Key)] = {} if Metadata is None else Metadata
        self.headers[(Bucket, Key)] = headers
        return {"ETag": f'"{hashlib.md5(Body).hexdigest()}"'}

    def get_paginator(self, operation: str) -> FakeListObjectsV2Paginator:
        assert operation == "list_objects_v2"
        return FakeListObjectsV2Paginator(self)

    def ops(self, operation: str) -> list[str]:
        """The keys of every ``operation`` call, in order."""
        return [key for op, _, key in self.calls if op == operation]

    def writes(self) -> list[str]:
        return self.ops("put_object")

    def count(self, operation: str, key: str) -> int:
        return self.ops(operation).count(key)

    def calls_without_bucket(self) -> list[tuple[str, str]]:
        return [(op, key) for op, _, key in self.calls]


class FakeListObjectsV2Paginator:
    """``get_paginator('list_objects_v2')``: keys in S3 byte order, pages served lazily."""

    def __init__(self, s3: FakeS3) -> None:
        self.s3 = s3

    def paginate(self, *, Bucket: str, PaginationConfig: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:  # noqa: N803
        requested = (PaginationConfig or {}).get("PageSize", 1000)
        self.s3.page_size_requested.append(requested)
        sizes = list(self.s3.page_sizes.get(Bucket, [requested]))
        keys = s3_order(set(self.s3.objects[Bucket]) - self.s3.hidden_from_listing.get(Bucket, set()))
        if not keys:
            self.s3.pages_served[Bucket] += 1
            yield {"KeyCount": 0, "IsTruncated": False}  # S3 sends no Contents for an empty listing
            return
        start = 0
        while start < len(keys):
            size = sizes.pop(0) if len(sizes) > 1 else sizes[0]  # the last size repeats
            page = keys[start : start + size]
            start += size
            self.s3.pages_served[Bucket] += 1
            yield {"Contents": [{"Key": key, "Size": 1} for key in page], "KeyCount": len(page)}


# --- SQS -----------------------------------------------------------------------------------------------------


class FakeSqs:
    """Records every SendMessage to ``queue_url``; with ``fail`` set, SQS refuses them all."""

    def __init__(self, queue_url: str = QUEUE_URL, *, fail: bool = False) -> None:
        self.queue_url = queue_url
        self.fail = fail
        self.sent: list[dict[str, Any]] = []
        self.attempts = 0

    def send_message(self, *, QueueUrl: str, MessageBody: str) -> dict[str, str]:  # noqa: N803
        self.attempts += 1
        if self.fail:
            raise client_error("AWS.SimpleQueueService.NonExistentQueue", 400, "SendMessage")
        assert QueueUrl == self.queue_url
        assert isinstance(MessageBody, str)
        self.sent.append(json.loads(MessageBody))
        return {"MessageId": str(len(self.sent))}


# --- events --------------------------------------------------------------------------------------------------


def s3_record(
    key: str,
    *,
    bucket: str = PROD,
    event_name: str = "ObjectRemoved:Delete",
    seconds_ago: float = 1.0,
    **extra: Any,
) -> dict[str, Any]:
    """One S3 notification record; ``key`` is used as given (S3 sends keys URL-encoded)."""
    event_time = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": event_time.isoformat().replace("+00:00", "Z"),
        "eventName": event_name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
        **extra,
    }


def sns_record(message: object, *, with_source: bool = True) -> dict[str, Any]:
    """One SNS record as Lambda delivers it; a message that is not a string is sent as its JSON."""
    text = message if isinstance(message, str) else json.dumps(message)
    record: dict[str, Any] = {"Sns": {"Type": "Notification", "MessageId": "m", "Message": text}}
    if with_source:
        record = {"EventSource": "aws:sns", "EventVersion": "1.0", **record}
    return record


def sns_event(*messages: object) -> dict[str, Any]:
    """A Lambda event of one SNS record per message."""
    return {"Records": [sns_record(message) for message in messages]}


def sns_removal_event(*keys: str, bucket: str = PROD) -> dict[str, Any]:
    """One SNS message carrying an S3 notification that ``keys`` were deleted from ``bucket``."""
    return sns_event({"Records": [s3_record(key, bucket=bucket) for key in keys]})
