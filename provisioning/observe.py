"""Watch a pipeline from the client side: which objects are back, how fast, what the healer logged.

Measured from outside the healer so a slow or wrong healer cannot hide it: an object counts
as healed only when it is readable again and its bytes hash to what was seeded.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
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


def sha256_of(s3: S3Client, bucket: str, key: str, *, algorithm: str = "sha256") -> str | None:
    """Hash of the object's bytes (SHA-256, or ``algorithm``), or None if it does not exist."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise
    return hashlib.new(algorithm, body, usedforsecurity=False).hexdigest()


class Expected(Protocol):
    """What a healed object must hash to (``SeededObject`` fits)."""

    @property
    def sha256(self) -> str: ...

    @property
    def md5(self) -> str: ...


class HealWatcher:
    """Watches faulted keys until each is back; records how long every one took.

    ``expected_etag(key)`` says what a healthy object's ETag is (the MD5 of its bytes for a
    single-part upload). While keys are pending, each poll lists the bucket (1,000 keys a
    request) or, for a few keys, HEADs them; a key counts as back when its ETag is the expected
    one. Polling takes at most about a third of the time, so measuring does not starve the
    emulator it measures. Use ``watch()`` in a background thread or ``wait()`` in the caller's.
    """

    def __init__(self, s3: S3Client, bucket: str, expected_etag: Mapping[str, str], *, poll_s: float = 0.1) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.expected_etag = dict(expected_etag)
        self.poll_s = poll_s
        self._pending: dict[str, float] = {}
        self._healed: dict[str, float] = {}
        self._faulted_at: dict[str, float] = {}
        self._reuploaded: set[str] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._last_check_s = 0.0

    def add(self, sent_at: Mapping[str, float]) -> None:
        """Start watching keys; ``sent_at`` is when each one's fault (delete) was sent."""
        with self._changed:
            for key, when in sent_at.items():
                if key not in self.expected_etag:
                    continue  # not a key the steady state covers
                # A key faulted again while pending keeps its first time: never understate.
                self._pending[key] = min(when, self._pending.get(key, when))
                self._faulted_at[key] = self._pending[key]
                self._healed.pop(key, None)
            self._changed.notify_all()

    def expect(self, key: str, etag: str) -> None:
        """A legitimate change (a re-upload): from now on this ETag is the healthy one."""
        with self._changed:
            self.expected_etag[key] = etag
            self._reuploaded.add(key)

    def faulted_at(self) -> dict[str, float]:
        """When each watched key's (latest) fault was sent, as time.time()."""
        with self._lock:
            return dict(self._faulted_at)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def poll_once(self) -> int:
        """Check pending keys once; return how many are still pending."""
        with self._lock:
            waiting = dict(self._pending)
        if not waiting:
            return 0
        started = time.monotonic()
        etags = _etags(self.s3, self.bucket, set(waiting))
        seen_at = time.time()
        with self._changed:
            for key, etag in etags.items():
                if key in self._pending and etag == self.expected_etag.get(key):
                    self._healed[key] = max(0.0, seen_at - self._pending.pop(key))
            self._last_check_s = time.monotonic() - started
            self._changed.notify_all()
            return len(self._pending)

    def wait(self, timeout_s: float) -> bool:
        """Poll until nothing is pending or the deadline passes; True when everything came back."""
        result: bool = (
            Retrying(
                stop=stop_after_delay(timeout_s),
                wait=lambda state: max(self.poll_s, 2 * self._last_check_s),
                retry=retry_if_result(lambda pending: pending > 0),
                retry_error_callback=lambda state: False,
            )(lambda: self.poll_once())
            == 0
        )
        return result

    def watch(self, stop: threading.Event) -> None:
        """Background loop: poll while anything is pending, until ``stop`` is set."""
        while not stop.is_set():
            with self._changed:
                if not self._pending:
                    self._changed.wait(0.2)
                    continue
            self.poll_once()
            stop.wait(max(self.poll_s, 2 * self._last_check_s))

    def report(self, backup_bucket: str | None = None, expected: Mapping[str, Expected] | None = None) -> HealReport:
        """Heal times and lost keys; healed keys are then verified byte for byte.

        Bytes are compared with ``expected`` SHA-256s when given, else with the latest version in
        ``backup_bucket``; a re-uploaded key must hash to its new ETag instead. A mismatch is
        reported as corrupted.
        """
        with self._lock:
            healed, pending, reuploaded = dict(self._healed), sorted(self._pending), set(self._reuploaded)

        def matches(key: str) -> bool:
            if key in reuploaded:
                return sha256_of(self.s3, self.bucket, key, algorithm="md5") == self.expected_etag[key]
            actual = sha256_of(self.s3, self.bucket, key)
            if expected is not None and key in expected:
                return actual == expected[key].sha256
            if backup_bucket is not None:
                return actual == sha256_of(self.s3, backup_bucket, key)
            return actual is not None

        with ThreadPoolExecutor(max_workers=16) as pool:
            verdicts = dict(zip(healed, pool.map(matches, healed), strict=True))
        corrupted = sorted(key for key, ok in verdicts.items() if not ok)
        return HealReport(
            time_to_heal_s={key: seconds for key, seconds in healed.items() if verdicts[key]},
            lost=tuple(pending),
            corrupted=tuple(corrupted),
        )


def wait_for_heal(
    s3: S3Client,
    bucket: str,
    expected: Mapping[str, Expected],
    deleted_at: Mapping[str, float],
    *,
    timeout_s: float,
    poll_s: float = 0.1,
) -> HealReport:
    """Wait until every key in ``deleted_at`` is back and byte-identical, or time runs out.

    ``deleted_at`` maps key -> time.time() when its delete request was sent.
    """
    watcher = HealWatcher(s3, bucket, {key: item.md5 for key, item in expected.items()}, poll_s=poll_s)
    watcher.add(deleted_at)
    watcher.wait(timeout_s)
    return watcher.report(expected=expected)


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
    return {key: etag for key, etag in list_etags(s3, bucket).items() if key in keys}


def list_etags(s3: S3Client, bucket: str, prefix: str = "") -> dict[str, str]:
    """Every key's ETag (quotes stripped), one listing page per 1,000 keys."""
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["ETag"].strip('"')
    return found


def delete_keys(
    s3: S3Client, bucket: str, keys: Iterable[str], *, batch: bool = True, concurrency: int = 1
) -> dict[str, float]:
    """Delete keys: DeleteObjects in 1,000-key batches, or one DeleteObject each (``concurrency`` at once).

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
        return sent_at

    def delete(key: str) -> tuple[str, float]:
        when = time.time()
        s3.delete_object(Bucket=bucket, Key=key)
        return key, when

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        sent_at.update(pool.map(delete, keys))
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
