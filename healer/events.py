"""Parse what Lambda hands the healer into small frozen records.

Accepted shapes:
- the SNS envelope Lambda delivers (``Records[].Sns.Message`` holding an S3 event as JSON),
- a bare S3 event (``Records[].eventSource == "aws:s3"``).

Every record of every message is parsed. Nothing here raises for a single bad
record: it becomes a ``Rejected`` entry with a reason, so its siblings still run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

HANDLED_EVENTS = frozenset({"ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated"})


@dataclass(frozen=True)
class ObjectRemoved:
    """One S3 ``ObjectRemoved:*`` record, key URL-decoded."""

    event_name: str
    event_time: datetime
    bucket: str
    key: str
    version_id: str | None = None
    sequencer: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A message that is not ours to act on (test events, other sources, other event types)."""

    reason: str


@dataclass(frozen=True)
class Rejected:
    """A record that could not be understood; ``raw`` is kept for the dead-letter queue."""

    reason: str
    raw: str


ParsedRecord = ObjectRemoved | Skipped | Rejected


def parse_event(event: object) -> list[ParsedRecord]:
    """Flatten a Lambda event into parsed records, one per S3 record (or per unusable message)."""
    return list(_iter_event(event))


def _iter_event(event: object) -> Iterator[ParsedRecord]:
    if not isinstance(event, Mapping):
        yield Rejected(f"event is a {type(event).__name__}, not an object", _raw(event))
        return
    records = event.get("Records")
    if not isinstance(records, list):
        yield Rejected("event has no Records list", _raw(event))
        return
    for record in records:
        if not isinstance(record, Mapping):
            yield Rejected("record is not an object", _raw(record))
        elif record.get("EventSource") == "aws:sns" or "Sns" in record:
            yield from _iter_sns_record(record)
        elif record.get("eventSource") == "aws:s3":
            yield _parse_s3_record(record)
        else:
            source = record.get("eventSource") or record.get("EventSource")
            yield Skipped(f"record from event source {source!r} is not an S3 or SNS record")


def _iter_sns_record(record: Mapping[str, Any]) -> Iterator[ParsedRecord]:
    sns = record.get("Sns")
    message = sns.get("Message") if isinstance(sns, Mapping) else None
    if not isinstance(message, str):
        yield Rejected("SNS record has no Message string", _raw(record))
        return
    try:
        body = json.loads(message)
    except (ValueError, RecursionError) as exc:  # RecursionError: hostile nesting ("[[[[…")
        yield Rejected(f"SNS Message is not JSON ({type(exc).__name__}: {str(exc)[:200]})", message)
        return
    if isinstance(body, Mapping) and body.get("Event") == "s3:TestEvent":
        yield Skipped(f"s3:TestEvent for bucket {body.get('Bucket')!r}")
        return
    if not isinstance(body, Mapping) or not isinstance(body.get("Records"), list):
        yield Skipped("SNS Message is not an S3 event notification")
        return
    if not body["Records"]:
        yield Skipped("S3 event notification with no records")
        return
    for inner in body["Records"]:
        if isinstance(inner, Mapping) and inner.get("eventSource") == "aws:s3":
            yield _parse_s3_record(inner)
        elif isinstance(inner, Mapping):
            yield Skipped(f"record from event source {inner.get('eventSource')!r} is not an S3 record")
        else:
            yield Rejected("S3 record is not an object", _raw(inner))


def _parse_s3_record(record: Mapping[str, Any]) -> ParsedRecord:
    event_name = record.get("eventName")
    if not isinstance(event_name, str):
        return Rejected("S3 record has no eventName", _raw(record))
    if event_name.startswith("s3:"):
        event_name = event_name[3:]
    if not event_name.startswith("ObjectRemoved:"):
        return Skipped(f"{event_name} is not an ObjectRemoved event")
    if event_name not in HANDLED_EVENTS:
        return Skipped(f"{event_name} is not an event the healer acts on")
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        encoded_key = obj["key"]
        if not isinstance(bucket, str) or not bucket:
            raise TypeError("bucket name is not a non-empty string")
        if not isinstance(encoded_key, str) or not encoded_key:
            raise TypeError("object key is not a non-empty string")
        event_time = _parse_time(record.get("eventTime"))
    except (KeyError, TypeError, ValueError) as exc:
        return Rejected(f"malformed S3 record: {exc!r}", _raw(record))
    return ObjectRemoved(
        event_name=event_name,
        event_time=event_time,
        bucket=bucket,
        key=unquote_plus(encoded_key),
        version_id=_optional_str(obj.get("versionId")),
        sequencer=_optional_str(obj.get("sequencer")),
    )


def _parse_time(value: object) -> datetime:
    if value is None:
        raise TypeError("eventTime is missing")
    if not isinstance(value, str):
        raise TypeError(f"eventTime is a {type(value).__name__}, not an ISO 8601 string")
    try:
        # fromisoformat accepts the trailing Z from Python 3.11 on.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"eventTime {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"eventTime {value!r} has no time zone")
    return parsed


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _raw(value: object, limit: int = 4096) -> str:
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
