"""``lambda_handler``: every record processed, one audit line each, failures raised only at the end."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

import healer.handler as handler_module
from healer.audit import AUDIT_MARKER
from healer.config import BACKUP_BUCKET_VAR, PRODUCTION_BUCKET_VAR, HealerConfig
from healer.exceptions import ConfigurationError, HealingFailed

from . import fakes
from .fakes import BACKUP, PROD, FakeS3, client_error, sns_event

CONFIG = HealerConfig(production_bucket=PROD, backup_bucket=BACKUP)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
AUDIT_FIELDS = {"type", "key", "event", "event_time", "action", "outcome", "time_to_heal_ms", "detail", "request_id"}


def contents(key: str) -> bytes:
    return f"contents of {key}".encode()


def make_s3(production: set[str], backup: set[str]) -> FakeS3:
    """Production holds newer uploads of ``production``; the backup holds ``contents(key)``, as text/plain.

    Only GetObject and PutObject answer: any other call (a HEAD, a copy) is an AttributeError,
    which the handler audits as an error.
    """
    return FakeS3(
        {
            PROD: {key: b"newer upload of " + key.encode() for key in production},
            BACKUP: {key: contents(key) for key in backup},
        },
        content_type="text/plain",
    )


def s3_record(key: str, *, bucket: str = PROD) -> dict[str, Any]:
    return fakes.s3_record(key, bucket=bucket, seconds_ago=2.0)


def audit_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    assert all(line["type"] == AUDIT_MARKER for line in lines)
    return lines


CONTEXT = SimpleNamespace(aws_request_id="req-123")


@pytest.fixture
def fake_s3(monkeypatch: pytest.MonkeyPatch) -> FakeS3:
    """Production has lost a.txt, missing.txt and c.txt; the backup holds all but missing.txt."""
    fake = make_s3(production={"unrelated.txt"}, backup={"a.txt", "c.txt", "unrelated.txt"})
    monkeypatch.setattr(handler_module, "_s3", lambda: fake)
    monkeypatch.setattr(handler_module, "_config", lambda: CONFIG)
    return fake


@pytest.fixture
def fresh_config_cache() -> Iterator[None]:
    handler_module._config.cache_clear()
    yield
    handler_module._config.cache_clear()


# --- a record missing from backup -----------------------------------------------------------------------


def test_every_record_is_processed_and_the_failure_is_raised_at_the_end(
    fake_s3: FakeS3, capsys: pytest.CaptureFixture[str]
) -> None:
    event = sns_event({"Records": [s3_record("a.txt"), s3_record("missing.txt"), s3_record("c.txt")]})

    with pytest.raises(HealingFailed) as caught:
        handler_module.lambda_handler(event, CONTEXT)

    assert fake_s3.objects[PROD]["a.txt"] == contents("a.txt")  # siblings healed, after the failure too
    assert fake_s3.objects[PROD]["c.txt"] == contents("c.txt")
    assert "missing.txt" not in fake_s3.objects[PROD]
    assert fake_s3.ops("get_object") == ["a.txt", "missing.txt", "c.txt"]
    assert fake_s3.ops("put_object") == ["a.txt", "c.txt"]
    assert len(caught.value.failures) == 1
    assert "'missing.txt'" in str(caught.value)
    assert "BackupObjectMissing" in str(caught.value)
    assert "'a.txt'" not in str(caught.value)


def test_one_audit_line_per_record_with_key_action_outcome_and_time_to_heal(
    fake_s3: FakeS3, capsys: pytest.CaptureFixture[str]
) -> None:
    event = sns_event({"Records": [s3_record("a.txt"), s3_record("missing.txt"), s3_record("c.txt")]})

    with pytest.raises(HealingFailed):
        handler_module.lambda_handler(event, CONTEXT)

    lines = audit_lines(capsys)
    assert [(line["key"], line["action"], line["outcome"]) for line in lines] == [
        ("a.txt", "restored", "healed"),
        ("missing.txt", "restore", "failed"),
        ("c.txt", "restored", "healed"),
    ]
    assert all(set(line) == AUDIT_FIELDS for line in lines)
    assert all(line["request_id"] == "req-123" for line in lines)
    healed_times = [line["time_to_heal_ms"] for line in lines if line["outcome"] == "healed"]
    assert all(isinstance(ms, int) and 1_000 <= ms < 60_000 for ms in healed_times)  # events are ~2 s old
    assert lines[1]["time_to_heal_ms"] is None
    assert "'backup-bucket'" in lines[1]["detail"]


# --- all well ------------------------------------------------------------------------------------------------


def test_successful_invocation_returns_counts(fake_s3: FakeS3, capsys: pytest.CaptureFixture[str]) -> None:
    event = sns_event({"Records": [s3_record("a.txt"), s3_record("unrelated.txt"), s3_record("c.txt")]})

    counts = handler_module.lambda_handler(event, CONTEXT)

    assert counts == {"healed": 2, "kept": 1, "ignored": 0, "skipped": 0, "rejected": 0, "failed": 0}
    assert [line["outcome"] for line in audit_lines(capsys)] == ["healed", "kept-existing", "healed"]
    assert fake_s3.objects[PROD]["unrelated.txt"] == b"newer upload of unrelated.txt"  # not clobbered
    assert fake_s3.calls_without_bucket() == [
        (op, key) for key in ("a.txt", "unrelated.txt", "c.txt") for op in ("get_object", "put_object")
    ]


def test_restored_object_keeps_its_metadata_and_content_type(
    fake_s3: FakeS3, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_s3.metadata[(BACKUP, "a.txt")] = {"owner": "ops"}

    handler_module.lambda_handler(sns_event({"Records": [s3_record("a.txt")]}), CONTEXT)

    assert fake_s3.objects[PROD]["a.txt"] == contents("a.txt")
    assert fake_s3.metadata[(PROD, "a.txt")] == {"owner": "ops"}
    assert fake_s3.headers[(PROD, "a.txt")] == {"ContentType": "text/plain"}


def test_event_for_another_bucket_is_ignored_without_any_request(
    fake_s3: FakeS3, capsys: pytest.CaptureFixture[str]
) -> None:
    event = sns_event({"Records": [s3_record("a.txt", bucket="someone-elses-bucket"), s3_record("c.txt")]})

    counts = handler_module.lambda_handler(event, CONTEXT)

    assert counts == {"healed": 1, "kept": 0, "ignored": 1, "skipped": 0, "rejected": 0, "failed": 0}
    assert fake_s3.calls_without_bucket() == [("get_object", "c.txt"), ("put_object", "c.txt")]
    assert "a.txt" not in fake_s3.objects[PROD]
    first, _ = audit_lines(capsys)
    assert (first["key"], first["action"], first["outcome"]) == ("a.txt", "none", "ignored")
    assert "'someone-elses-bucket'" in first["detail"]
    assert first["time_to_heal_ms"] is None


def test_test_event_only_is_skipped_without_raising(fake_s3: FakeS3, capsys: pytest.CaptureFixture[str]) -> None:
    envelopes = json.loads((FIXTURES / "moto-5.2.5-sns-s3-removed.json").read_text(encoding="utf-8"))
    test_event = next(e["Message"] for e in envelopes if e["Message"].get("Event") == "s3:TestEvent")

    counts = handler_module.lambda_handler(sns_event(test_event), CONTEXT)

    assert counts == {"healed": 0, "kept": 0, "ignored": 0, "skipped": 1, "rejected": 0, "failed": 0}
    assert fake_s3.calls == []
    (line,) = audit_lines(capsys)
    assert line["outcome"] == "skipped"
    assert line["key"] is None
    assert "s3:TestEvent" in line["detail"]


def test_captured_moto_messages_heal_their_decoded_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    envelopes = json.loads((FIXTURES / "moto-5.2.5-sns-s3-removed.json").read_text(encoding="utf-8"))
    keys = {"dir/a b+c ü.txt", "batch/1.txt", "batch/2.txt"}
    fake = make_s3(production=set(), backup=keys)
    fake.objects["capture-prod"] = fake.objects.pop(PROD)
    monkeypatch.setattr(handler_module, "_s3", lambda: fake)
    monkeypatch.setattr(handler_module, "_config", lambda: HealerConfig("capture-prod", BACKUP))

    counts = handler_module.lambda_handler(sns_event(*(e["Message"] for e in envelopes)), CONTEXT)

    assert counts == {"healed": 3, "kept": 0, "ignored": 0, "skipped": 2, "rejected": 0, "failed": 0}
    assert fake.objects["capture-prod"] == {key: contents(key) for key in keys}


# --- malformed records and AWS errors -------------------------------------------------------------------


def test_rejected_record_fails_the_invocation_but_its_siblings_heal(
    fake_s3: FakeS3, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = s3_record("whatever.txt")
    del broken["s3"]["object"]["key"]
    event = sns_event({"Records": [s3_record("a.txt"), broken, s3_record("c.txt")]})

    with pytest.raises(HealingFailed) as caught:
        handler_module.lambda_handler(event, CONTEXT)

    assert {"a.txt", "c.txt"} <= fake_s3.objects[PROD].keys()
    (failure,) = caught.value.failures
    assert failure.startswith("rejected record: ")
    assert "KeyError('key')" in failure
    assert [line["outcome"] for line in audit_lines(capsys)] == ["healed", "rejected", "healed"]


def test_unparsable_sns_message_fails_the_invocation(fake_s3: FakeS3, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(HealingFailed, match="not JSON"):
        handler_module.lambda_handler(sns_event("{oops"), CONTEXT)

    (line,) = audit_lines(capsys)
    assert line["outcome"] == "rejected"
    assert "{oops" in line["detail"]


def test_aws_error_on_one_record_is_audited_and_raised_after_its_siblings(
    fake_s3: FakeS3, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_s3.get_errors["a.txt"] = [client_error("AccessDenied", 403)]
    event = sns_event({"Records": [s3_record("a.txt"), s3_record("c.txt")]})

    with pytest.raises(HealingFailed, match=re.escape("'a.txt': ClientError")):
        handler_module.lambda_handler(event, CONTEXT)

    assert "c.txt" in fake_s3.objects[PROD]
    assert "a.txt" not in fake_s3.objects[PROD]
    assert fake_s3.ops("put_object") == ["c.txt"]
    lines = audit_lines(capsys)
    assert [(line["key"], line["outcome"]) for line in lines] == [("a.txt", "error"), ("c.txt", "healed")]
    assert "AccessDenied" in lines[0]["detail"]


def test_corrupt_backup_bytes_fail_the_record_without_writing(
    fake_s3: FakeS3, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_s3.corrupt.add("a.txt")
    event = sns_event({"Records": [s3_record("a.txt"), s3_record("c.txt")]})

    with pytest.raises(HealingFailed) as caught:
        handler_module.lambda_handler(event, CONTEXT)

    (failure,) = caught.value.failures
    assert failure.startswith("'a.txt': IntegrityError")
    assert "a.txt" not in fake_s3.objects[PROD]
    assert fake_s3.ops("put_object") == ["c.txt"]
    lines = audit_lines(capsys)
    assert [(line["key"], line["action"], line["outcome"]) for line in lines] == [
        ("a.txt", "restore", "failed"),
        ("c.txt", "restored", "healed"),
    ]


# --- module set-up ---------------------------------------------------------------------------------------


def test_importing_the_handler_creates_no_boto3_client(monkeypatch: pytest.MonkeyPatch) -> None:
    class ClientCreated(Exception):
        pass

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ClientCreated("boto3 client created")

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", PRODUCTION_BUCKET_VAR, BACKUP_BUCKET_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(boto3, "client", refuse)
    monkeypatch.setattr(boto3.session.Session, "client", refuse)

    module = importlib.reload(handler_module)  # would raise ClientCreated if import made a client

    # The patch does sit on the path the handler uses, on first use:
    with pytest.raises(ClientCreated):
        module._s3()


def test_missing_environment_configuration_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, fresh_config_cache: None
) -> None:
    monkeypatch.delenv(PRODUCTION_BUCKET_VAR, raising=False)
    monkeypatch.setenv(BACKUP_BUCKET_VAR, BACKUP)
    monkeypatch.setattr(handler_module, "_s3", lambda: make_s3(set(), set()))

    with pytest.raises(ConfigurationError, match=f"environment variable {PRODUCTION_BUCKET_VAR} is not set"):
        handler_module.lambda_handler(sns_event({"Records": [s3_record("a.txt")]}), CONTEXT)


def test_configuration_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, fresh_config_cache: None, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PRODUCTION_BUCKET_VAR, PROD)
    monkeypatch.setenv(BACKUP_BUCKET_VAR, BACKUP)
    fake = make_s3(production=set(), backup={"a.txt"})
    monkeypatch.setattr(handler_module, "_s3", lambda: fake)

    counts = handler_module.lambda_handler(sns_event({"Records": [s3_record("a.txt")]}), CONTEXT)

    assert counts["healed"] == 1
    assert fake.objects[PROD] == {"a.txt": contents("a.txt")}
    assert handler_module._config() == CONFIG
