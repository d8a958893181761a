"""Parsing what Lambda hands the healer: real captured SNS messages, bare S3 events, and junk."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from healer.events import ObjectRemoved, Rejected, Skipped, parse_event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
MOTO_FILE = "moto-5.2.5-sns-s3-removed.json"
LOCALSTACK_FILE = "localstack-4.13.1-sns-s3-removed.json"
ODD_KEY = "dir/a b+c ü.txt"


def load_envelopes(name: str) -> list[dict[str, Any]]:
    """The captured SNS envelopes of one fixture file (``Message`` still parsed, as stored)."""
    envelopes: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return envelopes


def sns_record(message: object) -> dict[str, Any]:
    """One Lambda SNS record whose ``Message`` is ``message`` serialised (or kept, if already a string)."""
    body = message if isinstance(message, str) else json.dumps(message)
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:topic:sub",
        "Sns": {"Type": "Notification", "MessageId": "m-1", "Subject": None, "Message": body},
    }


def sns_event(*messages: object) -> dict[str, Any]:
    """The event Lambda delivers for SNS: one ``Records`` entry per message."""
    return {"Records": [sns_record(message) for message in messages]}


def s3_record(
    key: str = "k.txt",
    *,
    bucket: str = "prod-bucket",
    event_name: str = "ObjectRemoved:Delete",
    event_time: str = "2026-12-04T20:13:46.581Z",
) -> dict[str, Any]:
    """A minimal well-formed S3 notification record (``key`` given already URL-encoded)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": event_time,
        "eventName": event_name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


def _fixture_cases() -> list[Any]:
    cases = []
    for label, name in (("moto", MOTO_FILE), ("localstack", LOCALSTACK_FILE)):
        for index, envelope in enumerate(load_envelopes(name)):
            message = envelope["Message"]
            what = message.get("Event") or message["Records"][0]["s3"]["object"]["key"]
            cases.append(pytest.param(envelope, id=f"{label}-{index}-{what}"))
    return cases


# --- the captured fixtures ------------------------------------------------------------------------


@pytest.mark.parametrize("envelope", _fixture_cases())
def test_every_captured_message_parses_into_one_record_matching_its_content(envelope: dict[str, Any]) -> None:
    parsed = parse_event(sns_event(envelope["Message"]))

    assert len(parsed) == 1
    message = envelope["Message"]
    if message.get("Event") == "s3:TestEvent":
        assert isinstance(parsed[0], Skipped)
        assert "s3:TestEvent" in parsed[0].reason
        assert message["Bucket"] in parsed[0].reason
    else:
        (raw,) = message["Records"]
        record = parsed[0]
        assert isinstance(record, ObjectRemoved)
        assert record.bucket == raw["s3"]["bucket"]["name"]
        assert record.key == unquote_plus(raw["s3"]["object"]["key"])
        assert record.event_name == raw["eventName"]
        assert record.event_time == datetime.fromisoformat(raw["eventTime"])
        assert record.event_time.tzinfo is not None


@pytest.mark.parametrize(
    ("fixture_file", "expected_keys"),
    [
        pytest.param(MOTO_FILE, [ODD_KEY, "batch/1.txt", "batch/2.txt"], id="moto"),
        pytest.param(LOCALSTACK_FILE, [ODD_KEY, "batch/2.txt", "batch/1.txt", "v.txt"], id="localstack"),
    ],
)
def test_keys_are_url_decoded_exactly(fixture_file: str, expected_keys: list[str]) -> None:
    # moto form-encodes ("dir%2Fa+b%2Bc+%C3%BC.txt"), LocalStack percent-encodes with "/" kept
    # ("dir/a%20b%2Bc%20%C3%BC.txt"): both must come out as the same real key, "+" included.
    parsed = parse_event(sns_event(*(envelope["Message"] for envelope in load_envelopes(fixture_file))))

    keys = [record.key for record in parsed if isinstance(record, ObjectRemoved)]
    assert keys == expected_keys


@pytest.mark.parametrize(
    ("fixture_file", "removed", "skipped", "event_name"),
    [
        pytest.param(MOTO_FILE, 3, 2, "ObjectRemoved:Delete", id="moto"),
        pytest.param(LOCALSTACK_FILE, 4, 2, "ObjectRemoved:DeleteMarkerCreated", id="localstack"),
    ],
)
def test_a_whole_capture_in_one_event_gives_one_record_per_message(
    fixture_file: str, removed: int, skipped: int, event_name: str
) -> None:
    envelopes = load_envelopes(fixture_file)

    parsed = parse_event(sns_event(*(envelope["Message"] for envelope in envelopes)))

    assert len(parsed) == len(envelopes)
    assert [type(record) for record in parsed].count(ObjectRemoved) == removed
    assert [type(record) for record in parsed].count(Skipped) == skipped
    assert {record.event_name for record in parsed if isinstance(record, ObjectRemoved)} == {event_name}


@pytest.mark.parametrize("fixture_file", [MOTO_FILE, LOCALSTACK_FILE], ids=["moto", "localstack"])
def test_delete_objects_gives_one_record_per_key(fixture_file: str) -> None:
    parsed = parse_event(sns_event(*(envelope["Message"] for envelope in load_envelopes(fixture_file))))

    batch_keys = sorted(r.key for r in parsed if isinstance(r, ObjectRemoved) and r.key.startswith("batch/"))
    assert batch_keys == ["batch/1.txt", "batch/2.txt"]


@pytest.mark.parametrize("fixture_file", [MOTO_FILE, LOCALSTACK_FILE], ids=["moto", "localstack"])
def test_test_events_are_skipped_naming_their_bucket(fixture_file: str) -> None:
    test_events = [e["Message"] for e in load_envelopes(fixture_file) if e["Message"].get("Event") == "s3:TestEvent"]
    assert len(test_events) == 2  # one per bucket of the capture

    parsed = parse_event(sns_event(*test_events))

    reasons = [record.reason for record in parsed if isinstance(record, Skipped)]
    assert len(reasons) == len(parsed)
    assert "'capture-prod'" in reasons[0]
    assert "'capture-versioned'" in reasons[1]


def test_localstack_delete_marker_on_versioned_bucket_keeps_its_version_id() -> None:
    (envelope,) = [e for e in load_envelopes(LOCALSTACK_FILE) if "v.txt" in json.dumps(e["Message"])]

    (record,) = parse_event(sns_event(envelope["Message"]))

    assert record == ObjectRemoved(
        event_name="ObjectRemoved:DeleteMarkerCreated",
        event_time=datetime(2026, 12, 4, 20, 14, 10, 360000, tzinfo=UTC),
        bucket="capture-versioned",
        key="v.txt",
        version_id="AaJCsV.1.yCMWieq2E0zzV9HxXoIo2S_",
        sequencer="0055AED6DCD90281E5",
    )


@pytest.mark.parametrize(
    ("fixture_file", "expected_sequencers"),
    [
        pytest.param(MOTO_FILE, {None}, id="moto-absent"),
        pytest.param(LOCALSTACK_FILE, {"0055AED6DCD90281E5"}, id="localstack-present"),
    ],
)
def test_sequencer_is_none_when_absent_and_kept_when_present(
    fixture_file: str, expected_sequencers: set[str | None]
) -> None:
    parsed = parse_event(sns_event(*(envelope["Message"] for envelope in load_envelopes(fixture_file))))

    assert {record.sequencer for record in parsed if isinstance(record, ObjectRemoved)} == expected_sequencers


def test_moto_records_have_no_version_id() -> None:
    parsed = parse_event(sns_event(*(envelope["Message"] for envelope in load_envelopes(MOTO_FILE))))

    assert {record.version_id for record in parsed if isinstance(record, ObjectRemoved)} == {None}


# --- event shapes ------------------------------------------------------------------------------------


def test_bare_s3_event_without_sns_is_parsed() -> None:
    moto_removed = [e["Message"] for e in load_envelopes(MOTO_FILE) if "Records" in e["Message"]]
    bare = {"Records": [message["Records"][0] for message in moto_removed]}

    parsed = parse_event(bare)

    assert [type(record) for record in parsed] == [ObjectRemoved] * 3
    assert [record.key for record in parsed if isinstance(record, ObjectRemoved)] == [
        ODD_KEY,
        "batch/1.txt",
        "batch/2.txt",
    ]


def test_every_record_of_one_sns_message_is_parsed_not_just_the_first() -> None:
    message = {"Records": [s3_record("first.txt"), s3_record("second.txt"), s3_record("third%2Bfourth.txt")]}

    parsed = parse_event(sns_event(message))

    assert [record.key for record in parsed if isinstance(record, ObjectRemoved)] == [
        "first.txt",
        "second.txt",
        "third+fourth.txt",
    ]
    assert len(parsed) == 3


def test_every_sns_record_of_one_event_is_parsed() -> None:
    parsed = parse_event(sns_event({"Records": [s3_record("a.txt")]}, {"Records": [s3_record("b.txt")]}))

    assert [record.key for record in parsed if isinstance(record, ObjectRemoved)] == ["a.txt", "b.txt"]


def test_event_name_with_s3_prefix_is_normalised() -> None:
    (record,) = parse_event({"Records": [s3_record(event_name="s3:ObjectRemoved:DeleteMarkerCreated")]})

    assert isinstance(record, ObjectRemoved)
    assert record.event_name == "ObjectRemoved:DeleteMarkerCreated"


def test_parsed_records_are_frozen() -> None:
    (record,) = parse_event({"Records": [s3_record()]})
    assert isinstance(record, ObjectRemoved)

    with pytest.raises(dataclasses.FrozenInstanceError):
        record.key = "other.txt"  # type: ignore[misc]


# --- records that are not ours -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"Records": [s3_record(event_name="ObjectCreated:Put")]}, id="bare-object-created-put"),
        pytest.param(sns_event({"Records": [s3_record(event_name="ObjectCreated:Put")]}), id="sns-object-created-put"),
        pytest.param({"Records": [s3_record(event_name="s3:ObjectCreated:Copy")]}, id="prefixed-object-created-copy"),
        pytest.param({"Records": [s3_record(event_name="LifecycleExpiration:Delete")]}, id="lifecycle-expiration"),
        pytest.param({"Records": [s3_record(event_name="ObjectRestore:Completed")]}, id="object-restore"),
        pytest.param({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}, id="sqs-source"),
        pytest.param({"Records": [{"eventSource": "aws:dynamodb"}]}, id="dynamodb-source"),
        pytest.param({"Records": [{"EventSource": "aws:kinesis"}]}, id="kinesis-source"),
        pytest.param(sns_event({"Records": [{"eventSource": "aws:sqs"}]}), id="sns-wrapping-other-source"),
        pytest.param(sns_event({"hello": "world"}), id="sns-message-not-an-s3-event"),
    ],
)
def test_other_events_and_sources_are_skipped(event: dict[str, Any]) -> None:
    parsed = parse_event(event)

    assert len(parsed) == 1
    assert isinstance(parsed[0], Skipped)
    assert parsed[0].reason


# --- malformed input ---------------------------------------------------------------------------------


def _with(record: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    """A deep copy of ``record`` with the value at ``path`` replaced (``...`` deletes it)."""
    result = copy.deepcopy(record)
    target = result
    for part in path[:-1]:
        target = target[part]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


GOOD = s3_record("good.txt")

MALFORMED = [
    pytest.param([GOOD], "not an object", id="event-is-a-list"),
    pytest.param(None, "not an object", id="event-is-none"),
    pytest.param("Records", "not an object", id="event-is-a-string"),
    pytest.param({}, "no Records", id="event-without-records"),
    pytest.param({"Records": {"0": GOOD}}, "no Records", id="records-not-a-list"),
    pytest.param({"Records": ["not a record"]}, "not an object", id="record-not-an-object"),
    pytest.param({"Records": [None]}, "not an object", id="record-is-null"),
    pytest.param(sns_event("{not json"), "not JSON", id="sns-message-not-json"),
    pytest.param({"Records": [{"EventSource": "aws:sns", "Sns": {}}]}, "no Message", id="sns-without-message"),
    pytest.param({"Records": [{"EventSource": "aws:sns"}]}, "no Message", id="sns-without-sns"),
    pytest.param(sns_event({"Records": [42]}), "not an object", id="sns-inner-record-not-an-object"),
    pytest.param({"Records": [_with(GOOD, ("s3", "object", "key"), ...)]}, "key", id="missing-object-key"),
    pytest.param({"Records": [_with(GOOD, ("s3", "object", "key"), 123)]}, "key", id="key-not-a-string"),
    pytest.param({"Records": [_with(GOOD, ("s3", "object", "key"), "")]}, "key", id="key-empty"),
    pytest.param({"Records": [_with(GOOD, ("s3", "object"), ...)]}, "object", id="missing-object"),
    pytest.param({"Records": [_with(GOOD, ("s3", "bucket"), ...)]}, "bucket", id="missing-bucket"),
    pytest.param({"Records": [_with(GOOD, ("s3", "bucket", "name"), None)]}, "bucket", id="bucket-name-null"),
    pytest.param({"Records": [_with(GOOD, ("s3",), ...)]}, "s3", id="missing-s3"),
    pytest.param({"Records": [_with(GOOD, ("s3",), [])]}, "malformed", id="s3-not-an-object"),
    pytest.param({"Records": [_with(GOOD, ("eventTime",), ...)]}, "eventTime", id="event-time-missing"),
    pytest.param({"Records": [_with(GOOD, ("eventTime",), 1733343226)]}, "eventTime", id="event-time-a-number"),
    pytest.param(
        {"Records": [_with(GOOD, ("eventTime",), "2026-12-04T20:13:46.581")]}, "time zone", id="event-time-naive"
    ),
    pytest.param({"Records": [_with(GOOD, ("eventTime",), "yesterday")]}, "yesterday", id="event-time-unparsable"),
    pytest.param({"Records": [_with(GOOD, ("eventName",), ...)]}, "eventName", id="event-name-missing"),
    pytest.param(sns_event({"Records": [_with(GOOD, ("s3", "object", "key"), ...)]}), "key", id="sns-missing-key"),
    pytest.param(sns_event({"Records": [_with(GOOD, ("eventTime",), ...)]}), "eventTime", id="sns-missing-time"),
]


@pytest.mark.parametrize(("event", "reason_mentions"), MALFORMED)
def test_malformed_input_gives_exactly_one_rejected_with_a_useful_reason(event: object, reason_mentions: str) -> None:
    parsed = parse_event(event)  # must never raise

    assert len(parsed) == 1
    (rejected,) = parsed
    assert isinstance(rejected, Rejected)
    assert reason_mentions in rejected.reason
    assert rejected.raw  # kept for the dead-letter queue


def test_rejected_keeps_the_offending_record_as_raw_text() -> None:
    bad = _with(GOOD, ("s3", "object", "key"), 123)

    (rejected,) = parse_event({"Records": [bad]})

    assert isinstance(rejected, Rejected)
    assert json.loads(rejected.raw) == bad


def test_rejected_raw_of_a_huge_record_is_truncated() -> None:
    bad = _with(GOOD, ("eventTime",), "x" * 10_000)

    (rejected,) = parse_event({"Records": [bad]})

    assert isinstance(rejected, Rejected)
    assert len(rejected.raw) <= 4096 + 1


def test_a_malformed_record_does_not_hide_its_siblings() -> None:
    bad = _with(GOOD, ("s3", "object", "key"), ...)
    message = {"Records": [s3_record("before.txt"), bad, s3_record("after.txt")]}

    parsed = parse_event(sns_event(message))

    assert [type(record) for record in parsed] == [ObjectRemoved, Rejected, ObjectRemoved]
    assert [record.key for record in parsed if isinstance(record, ObjectRemoved)] == ["before.txt", "after.txt"]
