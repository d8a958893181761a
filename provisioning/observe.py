"""Watch a pipeline from the client side: which objects are back, how fast, what the healer logged.

Measured from outside the healer so a slow or wrong healer cannot hide it: an object counts
as healed only when it is readable again and its bytes hash to what was seeded.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_result, stop_after_delay

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

AUDIT_TYPE = "s3-self-healing.audit"
DIRECT_CHECK_LIMIT = 64


@dataclass(frozen=True)
class HealReport:
    """Per-key heal times (seconds after the delete request was sent) and what never came back."""

    time_to_heal_s: dict[str, float]
    lost: tuple[str, ...]
    corrupted: tuple[str, ...]

    @property
    def healed(self) -> int:
        return len(self.time_to_heal_s)

    def percentile(self, q: float) -> float | None:
        return percentile(list(self.time_to_heal_s.values()), q)

    def summary(self) -> dict[str, Any]:
        values = list(self.time_to_heal_s.values())
        return {
            "healed": self.healed,
            "lost": len(self.lost),
            "corrupted": len(self.corrupted),
            "p50_s": percentile(values, 50),
            "p95_s": percentile(values, 95),
            "p99_s": percentile(values, 99),
            "max_s": max(values) if values else None,
        }


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every reported value was really measured)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def sha256_of(s3: S3Client, bucket: str, key: str) -> str | None:
    """Hash of the object's bytes, or None if it does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise
    return hashlib.sha256(body).hexdigest()


def present_keys(s3: S3Client, bucket: str, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


class Expected(Protocol):
    """What a healed object must hash to (``SeededObject`` fits)."""

    @property
    def sha256(self) -> str: ...

    @property
    def md5(self) -> str: ...


def wait_for_heal(
    s3: S3Client,
    bucket: str,
    expected: Mapping[str, Expected],
    deleted_at: Mapping[str, float],
    *,
    timeout_s: float,
    poll_s: float = 0.1,
) -> HealReport:
    """Poll until every key in ``deleted_at`` is back and byte-identical, or time runs out.

    ``deleted_at`` maps key -> time.time() when its delete request was sent. While polling, a
    key counts as back when its ETag equals the MD5 of the expected bytes (listing gives ETags
    for 1,000 keys a request, so measuring does not starve the emulator); afterwards every key
    that came back is downloaded and its SHA-256 checked, and a mismatch is reported as corrupted.
    """
    waiting = set(deleted_at)
    back: dict[str, float] = {}
    last_check_s = [0.0]

    def check() -> set[str]:
        started = time.monotonic()
        etags = _etags(s3, bucket, waiting)
        seen_at = time.time()
        for key, etag in etags.items():
            if etag == expected[key].md5:
                back[key] = max(0.0, seen_at - deleted_at[key])
                waiting.discard(key)
        last_check_s[0] = time.monotonic() - started
        return waiting

    # Retry while keys are still waiting; at the deadline return instead of raising: the keys
    # left over are the finding. Polling takes at most about a third of the time.
    Retrying(
        stop=stop_after_delay(timeout_s),
        wait=lambda state: max(poll_s, 2 * last_check_s[0]),
        retry=retry_if_result(bool),
        retry_error_callback=lambda state: None,
    )(check)
    with ThreadPoolExecutor(max_workers=16) as pool:
        digests = dict(zip(back, pool.map(lambda key: sha256_of(s3, bucket, key), back), strict=True))
    corrupted = sorted(key for key, digest in digests.items() if digest != expected[key].sha256)
    healed = {key: seconds for key, seconds in back.items() if key not in corrupted}
    return HealReport(time_to_heal_s=healed, lost=tuple(sorted(waiting)), corrupted=tuple(corrupted))


def _etags(s3: S3Client, bucket: str, keys: set[str]) -> dict[str, str]:
    """Current ETags (quotes stripped) of those ``keys`` that exist."""
    if len(keys) <= DIRECT_CHECK_LIMIT:

        def head(key: str) -> tuple[str, str | None]:
            try:
                return key, s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                    return key, None
                raise

        with ThreadPoolExecutor(max_workers=16) as pool:
            return {key: etag for key, etag in pool.map(head, keys) if etag is not None}
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if item["Key"] in keys:
                found[item["Key"]] = item["ETag"].strip('"')
    return found


def delete_keys(s3: S3Client, bucket: str, keys: Iterable[str], *, batch: bool = True) -> dict[str, float]:
    """Delete keys (DeleteObjects in 1,000-key batches, or one DeleteObject each).

    Returns key -> time.time() when its delete request was *sent*. A key can be healed before
    the request returns (moto delivers the event inside it), so the send time is the only
    honest zero: time-to-heal measured from it can overstate, never understate.
    """
    keys = list(keys)
    sent_at: dict[str, float] = {}
    if batch:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            now = time.time()
            response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
            errors = response.get("Errors", [])
            if errors:
                raise RuntimeError(f"{len(errors)} delete(s) failed, first: {errors[0]}")
            sent_at.update(dict.fromkeys(chunk, now))
    else:
        for key in keys:
            sent_at[key] = time.time()
            s3.delete_object(Bucket=bucket, Key=key)
    return sent_at


def audit_lines(logs: CloudWatchLogsClient, log_group: str) -> list[dict[str, Any]]:
    """Every audit line the healer wrote to its log group."""
    lines = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=log_group):
        for event in page.get("events", []):
            message = event.get("message", "")
            if AUDIT_TYPE not in message:
                continue
            try:
                parsed = json.loads(message)
            except ValueError:
                continue
            if isinstance(parsed, dict) and parsed.get("type") == AUDIT_TYPE:
                lines.append(parsed)
    return lines


def dead_letters(sqs: SQSClient, queue_url: str, *, max_messages: int = 10_000) -> list[dict[str, Any]]:
    """Read (without deleting) the dead-letter queue's records; they stay invisible for 30 s."""
    records: list[dict[str, Any]] = []
    while len(records) < max_messages:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        records.extend(json.loads(message["Body"]) for message in messages)
    return records


def queue_depth(sqs: SQSClient, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )
