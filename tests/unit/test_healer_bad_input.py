"""Hostile input: malformed, mistyped, huge and odd events never stop the healer from healing the rest.

Property-based (hypothesis). Each generated event is a list of top-level records; each record
expands into one or more *units*, and every unit must become exactly one parsed entry, one
audit line and, when it is a rejected one, exactly one dead-letter message carrying it.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import healer.handler as handler_module
from healer.audit import AUDIT_MARKER
from healer.config import HealerConfig
from healer.events import ObjectRemoved, Rejected, Skipped, parse_event
from healer.exceptions import HealingFailed

from .fakes import BACKUP, PROD, QUEUE_URL, FakeS3, FakeSqs, s3_record, sns_record

WITH_QUEUE = HealerConfig(PROD, BACKUP, QUEUE_URL)
WITHOUT_QUEUE = HealerConfig(PROD, BACKUP, None)
CONTEXT = SimpleNamespace(aws_request_id="req-hostile")
RAW_LIMIT = 4096  # events._raw keeps this many characters of a rejected record
SIXTY_FOUR_KIB = 64 * 1024
KEY_LIMIT = 1024  # bytes of UTF-8: the longest key S3 allows

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- fakes -------------------------------------------------------------------------------------------------


def backup_bytes(key: str) -> bytes:
    return b"backup of " + key.encode("utf-8", "surrogatepass")


def make_s3(backup: set[str]) -> FakeS3:
    """Production empty; the backup holds ``backup_bytes(key)`` for every key in ``backup``."""
    return FakeS3({PROD: {}, BACKUP: {key: backup_bytes(key) for key in backup}})


class NoSQS:
    def send_message(self, **kwargs: Any) -> None:
        raise AssertionError("SQS used although no dead-letter queue is configured")


# --- what each generated unit must become -------------------------------------------------------------------


@dataclass(frozen=True)
class Valid:
    key: str  # the decoded key, as it must be restored


@dataclass(frozen=True)
class Ignored:
    key: str  # a well-formed delete of another bucket


@dataclass(frozen=True)
class Bad:
    """A unit that must be rejected; ``raw`` is what the dead-letter message has to carry."""

    raw: Any
    raw_is_text: bool = False  # True: ``raw`` is the exact text (a non-JSON SNS message)


@dataclass(frozen=True)
class Skip:
    pass


Unit = Valid | Ignored | Bad | Skip


@dataclass
class Generated:
    event: Any
    per_record: list[list[Unit]] = field(default_factory=list)  # the units of each top-level record

    @property
    def units(self) -> list[Unit]:
        return [unit for units in self.per_record for unit in units]

    def of(self, kind: type) -> list[Any]:
        return [unit for unit in self.units if isinstance(unit, kind)]


# --- strategies ---------------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
garbage = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
non_object = garbage.filter(lambda value: not isinstance(value, dict))
non_string = garbage.filter(lambda value: not isinstance(value, str))
missing = object()  # marks a field to delete

_one_kib = [
    "x" * 1024,
    "é" * 512,  # 2 bytes each in UTF-8
    "日" * 341 + "a",  # 3 bytes each
    "😀" * 256,  # 4 bytes each (a surrogate pair in UTF-16)
    "a/" * 512,
    "+" * 1024,  # encoded as %2B by S3
    " " * 1024,  # encoded as + by S3
]
odd_keys = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40) | st.sampled_from(
    [
        "a b+c",
        "100% sure?",
        "%",
        "%%",
        "%zz",
        "..",
        "/",
        "./x",
        "\x00",
        "\t\n\r",
        "\x85",
        "\u2028",
        "\u202e",
        "\ufeff",
        "ﬀ",
        "𝒜",
    ]
)
# Percent escapes that are not UTF-8: S3 never sends them, but the healer must cope.
non_utf8_escapes = st.sampled_from(["%ff%fe", "%C3%28", "%E2%82", "%ED%A0%80", "%F0%28%8C%BC", "a%c0%afb", "%80"])
event_times = st.sampled_from(
    ["2026-12-04T20:13:46.581Z", "2026-12-04T20:13:46Z", "2026-12-04T20:13:46+02:00", "2026-12-04T20:13:46.581+00:00"]
)
bad_event_times = st.one_of(
    st.just(missing),
    non_string,
    st.sampled_from(["", "yesterday", "2026-13-01T00:00:00Z", "2026-12-04T20:13:46", "\x00", "9" * 60, "2026-12-04"]),
)
handled_names = st.sampled_from(
    ["ObjectRemoved:Delete", "s3:ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated"]
)
not_removed_names = st.sampled_from(
    ["ObjectCreated:Put", "s3:ObjectCreated:Copy", "ObjectRestore:Completed", "ObjectRemoved:Other", "", "Delete"]
) | st.text(max_size=20).filter(lambda name: not name.removeprefix("s3:").startswith("ObjectRemoved:"))
other_sources = (
    st.sampled_from(["aws:sqs", "aws:dynamodb", "aws:kinesis", "aws:s3:other", "AWS:S3", "", None]) | garbage
)
sixty_four_kib_not_json = st.sampled_from(
    ["x" * SIXTY_FOUR_KIB, "{" + "a" * (SIXTY_FOUR_KIB - 1), '{"Records": [' + "é" * SIXTY_FOUR_KIB, "\ufffd" * 22000]
)
sixty_four_kib_not_s3 = st.sampled_from([json.dumps("é" * SIXTY_FOUR_KIB), json.dumps(["x" * SIXTY_FOUR_KIB])])


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _is_s3_notification(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("Event") != "s3:TestEvent"
        and isinstance(value.get("Records"), list)
        and bool(value["Records"])
    )


def _set(record: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = record
    for part in path[:-1]:
        target = target[part]
    if value is missing:
        del target[path[-1]]
    else:
        target[path[-1]] = value


TOP_LEVEL_KINDS = [
    "sns-s3",
    "sns-s3",
    "bare-valid",
    "bare-rejected",
    "bare-skipped",
    "not-object",
    "sns-envelope",
    "sns-not-json",
    "sns-not-s3",
    "sns-test-event",
]


class _Draw:
    """Draws units for one event; valid keys are made unique with a running number."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw
        self.counter = 0

    def valid_s3(self) -> tuple[dict[str, Any], Unit]:
        self.counter += 1
        choice = self.draw(st.integers(0, 3))
        if choice == 0:  # a 1,024-byte key
            key = f"{self.counter:04d}" + self.draw(st.sampled_from(_one_kib))
            while len(key.encode()) > KEY_LIMIT:
                key = key[:-1]
            key += "x" * (KEY_LIMIT - len(key.encode()))  # exactly S3's 1,024-byte maximum
        elif choice == 1:  # escapes that do not decode as UTF-8: the decoded (U+FFFD) key is restored
            encoded = f"{self.counter}-" + self.draw(non_utf8_escapes)
            return self._with_extras(s3_record(encoded, event_name=self.draw(handled_names))), Valid(
                unquote_plus(encoded)
            )
        else:
            key = f"{self.counter}~" + self.draw(odd_keys)
        record = s3_record(quote_plus(key), event_name=self.draw(handled_names))
        record["eventTime"] = self.draw(st.just(record["eventTime"]) | event_times)
        return self._with_extras(record), Valid(key)

    def _with_extras(self, record: dict[str, Any]) -> dict[str, Any]:
        # Garbage in the optional fields does not make a record invalid.
        if self.draw(st.booleans()):
            record["s3"]["object"]["versionId"] = self.draw(non_string | st.just(""))
            record["s3"]["object"]["sequencer"] = self.draw(garbage)
            record["userIdentity"] = self.draw(garbage)
        return record

    def ignored_s3(self) -> tuple[dict[str, Any], Unit]:
        bucket = self.draw(st.text(min_size=1, max_size=30).filter(lambda name: name != PROD))
        self.counter += 1
        key = f"{self.counter}~ignored"
        return s3_record(quote_plus(key), bucket=bucket), Ignored(key)

    def rejected_s3(self) -> tuple[dict[str, Any], Unit]:
        record = s3_record("victim.txt", event_name=self.draw(handled_names))
        path, value = self.draw(
            st.one_of(
                st.tuples(st.just(("eventName",)), st.just(missing) | non_string),
                st.tuples(st.just(("s3",)), st.just(missing) | non_object),
                st.tuples(st.just(("s3", "bucket")), st.just(missing) | non_object),
                st.tuples(st.just(("s3", "bucket", "name")), st.just(missing) | st.just("") | non_string),
                st.tuples(st.just(("s3", "object")), st.just(missing) | non_object),
                st.tuples(st.just(("s3", "object", "key")), st.just(missing) | st.just("") | non_string),
                st.tuples(st.just(("eventTime",)), bad_event_times),
            )
        )
        _set(record, path, value)
        return record, Bad(record)

    def skipped_s3(self) -> tuple[dict[str, Any], Unit]:
        if self.draw(st.booleans()):
            return s3_record("created.txt", event_name=self.draw(not_removed_names)), Skip()
        record = self.draw(st.dictionaries(st.text(max_size=8), garbage, max_size=3))
        record.pop("Sns", None)
        record.pop("EventSource", None)
        record["eventSource"] = self.draw(other_sources.filter(lambda source: source != "aws:s3"))
        return record, Skip()

    def inner(self) -> tuple[Any, Unit]:
        """One record inside an S3 notification delivered by SNS."""
        kind = self.draw(st.sampled_from(["valid", "valid", "ignored", "rejected", "not-object", "skipped"]))
        if kind == "not-object":
            value = self.draw(non_object)
            return value, Bad(value)
        return {"valid": self.valid_s3, "ignored": self.ignored_s3, "rejected": self.rejected_s3}.get(
            kind, self.skipped_s3
        )()

    def top_level(self) -> tuple[Any, list[Unit]]:
        kind = self.draw(st.sampled_from(TOP_LEVEL_KINDS))
        with_source = self.draw(st.booleans())
        if kind == "sns-s3":
            inner = [self.inner() for _ in range(self.draw(st.integers(1, 4)))]
            message = json.dumps({"Records": [record for record, _ in inner]})
            return sns_record(message, with_source=with_source), [unit for _, unit in inner]
        if kind.startswith("bare-"):
            record, unit = {"bare-valid": self.valid_s3, "bare-rejected": self.rejected_s3}.get(kind, self.skipped_s3)()
            return record, [unit]
        if kind == "not-object":
            value = self.draw(non_object)
            return value, [Bad(value)]
        if kind == "sns-envelope":  # the SNS part itself is broken
            sns = self.draw(
                st.one_of(
                    st.just(missing),
                    non_object,
                    st.dictionaries(st.text(max_size=8).filter(lambda name: name != "Message"), garbage, max_size=3),
                    st.builds(lambda message: {"Message": message}, non_string),
                )
            )
            record = {"EventSource": "aws:sns"} if sns is missing else {"EventSource": "aws:sns", "Sns": sns}
            if sns is not missing and not with_source:
                record = {"Sns": sns}
            return record, [Bad(record)]
        if kind == "sns-not-json":
            message = self.draw(st.text(max_size=60).filter(lambda text: not _is_json(text)) | sixty_four_kib_not_json)
            return sns_record(message, with_source=with_source), [Bad(message, raw_is_text=True)]
        if kind == "sns-not-s3":
            message = self.draw(
                garbage.filter(lambda value: not _is_s3_notification(value)).map(json.dumps) | sixty_four_kib_not_s3
            )
            return sns_record(message, with_source=with_source), [Skip()]
        test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": self.draw(garbage)}
        return sns_record(json.dumps(test_event), with_source=with_source), [Skip()]


@st.composite
def hostile_events(draw: Any, *, max_records: int = 6) -> Generated:
    drawer = _Draw(draw)
    drawn = [drawer.top_level() for _ in range(draw(st.integers(1, max_records)))]
    return Generated({"Records": [record for record, _ in drawn]}, [units for _, units in drawn])


@st.composite
def events_with_a_bad_record(draw: Any) -> Generated:
    generated = draw(hostile_events(max_records=5))
    if not generated.of(Bad):
        value = draw(non_object)
        position = draw(st.integers(0, len(generated.per_record)))
        generated.event["Records"].insert(position, value)
        generated.per_record.insert(position, [Bad(value)])
    return generated


# --- helpers ------------------------------------------------------------------------------------------------


def run_handler(generated: Generated, config: HealerConfig, sqs: Any) -> tuple[Any, list[dict[str, Any]], FakeS3]:
    """Run lambda_handler with fakes; return (result or raised exception, audit lines, the fake S3)."""
    fake_s3 = make_s3(backup={unit.key for unit in generated.of(Valid)})
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr(handler_module, "_config", lambda: config)
        patch.setattr(handler_module, "_s3", lambda: fake_s3)
        patch.setattr(handler_module, "_sqs", lambda: sqs)
        try:
            result: Any = handler_module.lambda_handler(generated.event, CONTEXT)
        except Exception as exc:  # returned for the test to inspect
            result = exc
    # Split on "\n" only: audit lines may hold U+0085 or U+2028, which str.splitlines() also splits on.
    lines = [json.loads(line) for line in out.getvalue().split("\n") if line]
    assert all(line["type"] == AUDIT_MARKER for line in lines)
    return result, lines, fake_s3


def assert_raw_carried(carried: str, unit: Bad) -> None:
    """The dead-lettered text is the rejected record itself (cut at RAW_LIMIT characters)."""
    if unit.raw_is_text:
        assert carried == unit.raw
        return
    if carried.endswith("…") and len(carried) == RAW_LIMIT + 1:
        assert json.dumps(unit.raw).startswith(carried[:-1])
    else:
        assert json.loads(carried) == unit.raw


def assert_siblings_healed(generated: Generated, lines: list[dict[str, Any]], fake_s3: FakeS3) -> None:
    assert len(lines) == len(generated.units), "one audit line per record"
    for unit, line in zip(generated.units, lines, strict=True):
        if isinstance(unit, Valid):
            assert (line["key"], line["outcome"]) == (unit.key, "healed")
            assert fake_s3.objects[PROD][unit.key] == backup_bytes(unit.key)
        elif isinstance(unit, Ignored):
            assert (line["key"], line["outcome"]) == (unit.key, "ignored")
        elif isinstance(unit, Skip):
            assert line["outcome"] == "skipped"
        else:
            assert (line["action"], line["outcome"]) == ("dead-letter", "rejected")
            assert line["detail"].strip()
    assert set(fake_s3.objects[PROD]) == {unit.key for unit in generated.of(Valid)}
    assert all(bucket != PROD for op, bucket, _ in fake_s3.calls if op == "get_object")  # backup reads only


# --- parse_event -------------------------------------------------------------------------------------------


@FAST
@given(hostile_events(max_records=8))
def test_parse_event_yields_one_entry_per_record_and_never_raises(generated: Generated) -> None:
    parsed = parse_event(generated.event)

    assert len(parsed) == len(generated.units)
    for entry, unit in zip(parsed, generated.units, strict=True):
        if isinstance(unit, Valid | Ignored):
            assert isinstance(entry, ObjectRemoved)
            assert entry.key == unit.key
        elif isinstance(unit, Skip):
            assert isinstance(entry, Skipped)
            assert entry.reason
        else:
            assert isinstance(entry, Rejected)
            assert entry.reason
            assert_raw_carried(entry.raw, unit)


anything = st.recursive(
    json_scalars | st.text(st.characters(), max_size=10),  # st.characters() includes lone surrogates
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)


@FAST
@given(
    st.one_of(
        anything,
        st.builds(lambda records: {"Records": records}, anything),
        st.builds(lambda records: {"Records": records}, st.lists(anything, max_size=5)),
        st.builds(
            lambda messages: {"Records": [sns_record(m) for m in messages]},
            st.lists(anything.map(json.dumps) | st.text(st.characters(), max_size=30), max_size=4),
        ),
    )
)
def test_parse_event_never_raises_on_arbitrary_json(event: Any) -> None:
    parsed = parse_event(event)

    assert all(isinstance(entry, ObjectRemoved | Skipped | Rejected) for entry in parsed)
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        (entry,) = parsed
        assert isinstance(entry, Rejected)
    else:
        assert len(parsed) >= len([r for r in event["Records"] if not isinstance(r, dict) or "Sns" not in r])


@pytest.mark.parametrize("depth", [10, 900])
def test_deeply_nested_sns_message_within_pythons_limit_is_skipped(depth: int) -> None:
    parsed = parse_event({"Records": [sns_record("[" * depth + "]" * depth)]})

    assert [type(entry) for entry in parsed] == [Skipped]


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_sns_message_is_rejected_not_raised(depth: int) -> None:
    message = "[" * depth + "]" * depth

    parsed = parse_event({"Records": [sns_record(message)]})

    assert len(parsed) == 1


def test_deeply_nested_sns_message_does_not_stop_its_siblings() -> None:
    generated = Generated(
        {"Records": [sns_record(json.dumps({"Records": [s3_record("a.txt")]})), sns_record("[" * 5_000)]},
        [[Valid("a.txt")], [Bad("[" * 5_000, raw_is_text=True)]],
    )
    sqs = FakeSqs()

    result, lines, fake_s3 = run_handler(generated, WITH_QUEUE, sqs)

    if isinstance(result, BaseException):
        raise result
    assert_siblings_healed(generated, lines, fake_s3)
    assert len(sqs.sent) == 1


# --- lambda_handler ----------------------------------------------------------------------------------------


@FAST
@given(hostile_events())
def test_with_a_dead_letter_queue_bad_records_never_fail_the_invocation(generated: Generated) -> None:
    sqs = FakeSqs()

    result, lines, fake_s3 = run_handler(generated, WITH_QUEUE, sqs)

    assert isinstance(result, dict), f"the invocation raised {result!r}"
    assert result == {
        "healed": len(generated.of(Valid)),
        "kept": 0,
        "ignored": len(generated.of(Ignored)),
        "skipped": len(generated.of(Skip)),
        "rejected": len(generated.of(Bad)),
        "failed": 0,
    }
    assert_siblings_healed(generated, lines, fake_s3)
    bad = generated.of(Bad)
    assert len(sqs.sent) == len(bad), "exactly one dead-letter message per bad record"
    rejected_lines = [line for line in lines if line["outcome"] == "rejected"]
    for message, unit, line in zip(sqs.sent, bad, rejected_lines, strict=True):
        assert set(message["requestPayload"]) == {"rejected"}
        assert_raw_carried(message["requestPayload"]["rejected"], unit)
        assert message["requestContext"]["requestId"] == CONTEXT.aws_request_id
        assert message["responsePayload"]["errorType"] == "BadEvent"
        reason = message["responsePayload"]["errorMessage"]
        assert reason
        assert line["detail"].startswith(reason)
        assert "sent to the dead-letter queue" in line["detail"]


@FAST
@given(events_with_a_bad_record())
def test_without_a_dead_letter_queue_bad_records_fail_the_invocation_after_the_siblings(
    generated: Generated,
) -> None:
    result, lines, fake_s3 = run_handler(generated, WITHOUT_QUEUE, NoSQS())

    assert isinstance(result, HealingFailed)
    assert len(result.failures) == len(generated.of(Bad))
    assert all(failure.startswith("rejected record: ") for failure in result.failures)
    assert_siblings_healed(generated, lines, fake_s3)
    assert all("no dead-letter queue configured" in line["detail"] for line in lines if line["outcome"] == "rejected")


@FAST
@given(events_with_a_bad_record())
def test_when_sqs_refuses_the_dead_letter_the_invocation_fails_so_nothing_is_lost(generated: Generated) -> None:
    sqs = FakeSqs(fail=True)

    result, lines, fake_s3 = run_handler(generated, WITH_QUEUE, sqs)

    assert isinstance(result, HealingFailed)
    assert len(result.failures) == len(generated.of(Bad))
    assert sqs.attempts == len(generated.of(Bad))
    assert_siblings_healed(generated, lines, fake_s3)
    assert all("dead-lettering failed" in line["detail"] for line in lines if line["outcome"] == "rejected")


@pytest.mark.parametrize(
    "event",
    [None, [], "Records", 42, {}, {"Records": None}, {"Records": {"0": {}}}, {"records": []}],
    ids=["none", "list", "string", "int", "empty", "records-null", "records-object", "lowercase"],
)
def test_an_unusable_event_is_one_dead_lettered_record(event: Any) -> None:
    sqs = FakeSqs()

    result, lines, _ = run_handler(Generated(event, [[Bad(event)]]), WITH_QUEUE, sqs)

    assert result["rejected"] == 1
    assert [line["outcome"] for line in lines] == ["rejected"]
    (message,) = sqs.sent
    assert_raw_carried(message["requestPayload"]["rejected"], Bad(event))


def test_a_64_kib_non_json_message_is_dead_lettered_whole() -> None:
    message = "not json " + "é" * SIXTY_FOUR_KIB
    generated = Generated(
        {"Records": [sns_record(message), s3_record(quote_plus("a b.txt"))]}, [[Bad(message, True)], [Valid("a b.txt")]]
    )
    sqs = FakeSqs()

    result, lines, fake_s3 = run_handler(generated, WITH_QUEUE, sqs)

    assert result["rejected"] == 1 and result["healed"] == 1
    assert_siblings_healed(generated, lines, fake_s3)
    assert sqs.sent[0]["requestPayload"]["rejected"] == message
