"""The reconciliation sweep: merge-join of two paged listings, no-clobber restores, rate limit, dead letters."""

from __future__ import annotations

import contextlib
import io
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import wait_none

import healer.retry as retry_module
import healer.sweep as sweep_module
from healer.config import HealerConfig
from healer.events import ObjectRemoved, parse_event
from healer.sweep import SWEEP_EVENT, missing_keys, sweep

from .fakes import BACKUP, PROD, QUEUE_URL, FakeS3, FakeSqs, client_error, s3_order

CONFIG = HealerConfig(PROD, BACKUP, QUEUE_URL)


def body_of(key: str) -> bytes:
    return b"backup bytes of " + key.encode()


def make_s3(production: set[str], backup: set[str]) -> FakeS3:
    """Production holds ``production bytes of <key>``; the backup holds ``body_of(key)``."""
    return FakeS3(
        {
            PROD: {key: b"production bytes of " + key.encode() for key in production},
            BACKUP: {key: body_of(key) for key in backup},
        }
    )


def audit_of(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.split("\n") if line]


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    production = retry_module.transient_retrying
    monkeypatch.setattr(sweep_module, "transient_retrying", lambda: production().copy(wait=wait_none()))


# --- missing_keys ------------------------------------------------------------------------------------------

ALPHABET = ["a", "z", "0", " ", "/", "+", "%", "é", "日", "本", "😀", "\x7f", "ﬀ", "𝒜", "\u0080", "\uffff"]


@pytest.mark.parametrize(
    ("backup", "production", "expected"),
    [
        (["a", "b", "c", "d"], ["b", "c", "d"], ["a"]),
        (["a", "b", "c", "d"], ["a", "c", "d"], ["b"]),
        (["a", "b", "c", "d"], ["a", "b", "c"], ["d"]),
        (["a", "b", "c", "d"], [], ["a", "b", "c", "d"]),
        ([], ["a", "b"], []),
        ([], [], []),
        (["b", "d"], ["a", "b", "c", "d", "e"], []),  # production has extra keys around and between
        (["b", "d", "f"], ["a", "c", "e", "g"], ["b", "d", "f"]),  # disjoint, interleaved
        (["a", "c"], ["b"], ["a", "c"]),
    ],
    ids=[
        "missing-first",
        "missing-middle",
        "missing-last",
        "production-empty",
        "backup-empty",
        "both-empty",
        "production-extra",
        "interleaved",
        "extra-between",
    ],
)
@pytest.mark.parametrize("page_size", [1, 2, 1000])
def test_missing_keys_merge(backup: list[str], production: list[str], expected: list[str], page_size: int) -> None:
    s3 = make_s3(set(production), set(backup))

    assert list(missing_keys(s3, CONFIG, page_size=page_size)) == expected  # type: ignore[arg-type]
    assert set(s3.page_size_requested) == {page_size}


def test_unicode_keys_are_merged_in_s3_byte_order() -> None:
    backup = ["a", "a/b", "a b", "é", "z", "日本", "𝒜", "ﬀ", "a\x00"]
    s3 = make_s3({"a b", "é", "ﬀ"}, set(backup))

    missing = list(missing_keys(s3, CONFIG, page_size=1))  # type: ignore[arg-type]

    assert missing == ["a", "a\x00", "a/b", "z", "日本", "𝒜"]
    assert [key.encode() for key in missing] == sorted(key.encode() for key in missing)
    assert s3_order(["a b", "a/b", "a", "z", "é", "日本"]) == ["a", "a b", "a/b", "z", "é", "日本"]


@pytest.mark.parametrize(("backup_pages", "production_pages"), [([1], [1000]), ([1000], [1]), ([3, 1, 7], [2, 5])])
def test_uneven_pages_of_the_two_listings(backup_pages: list[int], production_pages: list[int]) -> None:
    backup = {f"k{index:04d}" for index in range(2500)}
    production = backup - {"k0000", "k0999", "k1000", "k1001", "k2499"}
    s3 = make_s3(production, backup)
    s3.page_sizes = {BACKUP: backup_pages, PROD: production_pages}

    assert list(missing_keys(s3, CONFIG)) == ["k0000", "k0999", "k1000", "k1001", "k2499"]  # type: ignore[arg-type]


def test_listings_are_streamed_page_by_page() -> None:
    backup = {f"k{index:05d}" for index in range(5000)}
    s3 = make_s3(backup - {"k00000"}, backup)

    first = next(missing_keys(s3, CONFIG, page_size=1000))  # type: ignore[arg-type]

    assert first == "k00000"
    assert s3.pages_served == {PROD: 1, BACKUP: 1}, "no full listing in memory"


@settings(max_examples=150, deadline=None)
@given(
    backup=st.sets(st.text(st.sampled_from(ALPHABET), min_size=1, max_size=4), max_size=30),
    production=st.sets(st.text(st.sampled_from(ALPHABET), min_size=1, max_size=4), max_size=30),
    backup_page=st.integers(1, 7),
    production_page=st.integers(1, 7),
)
def test_missing_keys_is_backup_minus_production_in_byte_order(
    backup: set[str], production: set[str], backup_page: int, production_page: int
) -> None:
    s3 = make_s3(production, backup)
    s3.page_sizes = {BACKUP: [backup_page], PROD: [production_page]}

    assert list(missing_keys(s3, CONFIG)) == s3_order(backup - production)  # type: ignore[arg-type]


# --- sweep ---------------------------------------------------------------------------------------------------


def test_sweep_restores_only_the_missing_keys(capsys: pytest.CaptureFixture[str]) -> None:
    backup = {f"docs/{name}.txt" for name in "abcdefghij"}
    gone = {"docs/a.txt", "docs/e.txt", "docs/j.txt"}
    s3 = make_s3((backup - gone) | {"only-in-production.txt"}, backup)
    before = dict(s3.objects[PROD])

    result = sweep(s3, CONFIG, max_restores_per_s=0, sqs=FakeSqs(), request_id="req-sweep")  # type: ignore[arg-type]

    assert (result.missing, result.healed, result.kept, result.failed, result.dead_lettered) == (3, 3, 0, 0, 0)
    assert result.healed_keys == s3_order(gone)
    assert s3.writes() == s3_order(gone)
    assert {key: s3.objects[PROD][key] for key in gone} == {key: body_of(key) for key in gone}
    assert all(s3.objects[PROD][key] == data for key, data in before.items()), "present objects untouched"
    assert all(bucket == BACKUP for op, bucket, _ in s3.calls if op == "get_object")
    lines = audit_of(capsys)
    assert [(line["key"], line["action"], line["outcome"]) for line in lines] == [
        (key, "restored", "healed") for key in s3_order(gone)
    ]
    assert all(line["event"] == SWEEP_EVENT and line["request_id"] == "req-sweep" for line in lines)
    assert all(line["detail"].startswith("sweep: ") for line in lines)


def test_nothing_missing_means_no_writes_and_no_audit(capsys: pytest.CaptureFixture[str]) -> None:
    keys = {f"k{index}" for index in range(50)}
    s3 = make_s3(keys, keys)

    result = sweep(s3, CONFIG, max_restores_per_s=0, sqs=FakeSqs())  # type: ignore[arg-type]

    assert (result.missing, result.healed) == (0, 0)
    assert s3.writes() == []
    assert audit_of(capsys) == []


def test_unreadable_backup_key_is_dead_lettered_and_the_sweep_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    backup = {"a.txt", "b denied+1.txt", "c.txt"}
    s3 = make_s3(set(), backup)
    s3.get_errors["b denied+1.txt"] = [client_error("AccessDenied", 403)]
    sqs = FakeSqs()

    result = sweep(s3, CONFIG, max_restores_per_s=0, sqs=sqs, request_id="req-sweep")  # type: ignore[arg-type]

    assert (result.missing, result.healed, result.failed, result.dead_lettered) == (3, 2, 1, 1)
    assert set(s3.objects[PROD]) == {"a.txt", "c.txt"}, "keys after the failure are still restored"
    assert s3.calls.count(("get_object", BACKUP, "b denied+1.txt")) == 1, "a denial is not retried"
    (message,) = sqs.sent
    assert message["responsePayload"]["errorType"] == "ClientError"
    assert "AccessDenied" in message["responsePayload"]["errorMessage"]
    assert message["requestContext"]["requestId"] == "req-sweep"
    # The dead letter is an event the healer itself can redrive: it parses back to the same key.
    (parsed,) = parse_event(message["requestPayload"])
    assert isinstance(parsed, ObjectRemoved)
    assert (parsed.bucket, parsed.key) == (PROD, "b denied+1.txt")
    outcomes = [(line["key"], line["outcome"]) for line in audit_of(capsys)]
    assert outcomes == [("a.txt", "healed"), ("b denied+1.txt", "failed"), ("c.txt", "healed")]


def test_without_a_queue_failures_are_counted_but_not_dead_lettered() -> None:
    s3 = make_s3(set(), {"a.txt", "b.txt"})
    s3.get_errors["a.txt"] = [client_error("AccessDenied", 403)]

    with contextlib.redirect_stdout(io.StringIO()):
        no_sqs = sweep(s3, CONFIG, max_restores_per_s=0, sqs=None)  # type: ignore[arg-type]
        no_url = sweep(s3, HealerConfig(PROD, BACKUP), max_restores_per_s=0, sqs=FakeSqs())  # type: ignore[arg-type]

    assert (no_sqs.failed, no_sqs.dead_lettered, no_sqs.healed) == (1, 0, 1)
    assert (no_url.failed, no_url.dead_lettered, no_url.healed) == (1, 0, 0)  # b.txt was healed by the first


def test_object_reuploaded_after_the_listing_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    s3 = make_s3({"a.txt"}, {"a.txt", "b.txt"})
    s3.hidden_from_listing[PROD] = {"a.txt"}  # production's listing predates the re-upload

    result = sweep(s3, CONFIG, max_restores_per_s=0, sqs=FakeSqs())  # type: ignore[arg-type]

    assert (result.missing, result.healed, result.kept) == (2, 1, 1)
    assert s3.objects[PROD]["a.txt"] == b"production bytes of a.txt"
    assert [line["outcome"] for line in audit_of(capsys)] == ["kept-existing", "healed"]


def test_transient_errors_are_retried_during_a_sweep() -> None:
    s3 = make_s3(set(), {"a.txt"})
    s3.get_errors["a.txt"] = [client_error("SlowDown", 503), client_error("SlowDown", 503), None]

    with contextlib.redirect_stdout(io.StringIO()):
        result = sweep(s3, CONFIG, max_restores_per_s=0, sqs=FakeSqs())  # type: ignore[arg-type]

    assert (result.healed, result.failed) == (1, 0)
    assert s3.calls.count(("get_object", BACKUP, "a.txt")) == 3


def test_rate_limit_spaces_out_restores() -> None:
    def timed(rate: float) -> float:
        backup = {f"k{index}" for index in range(10)}
        s3 = make_s3(set(), backup)
        started = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()):
            result = sweep(s3, CONFIG, max_restores_per_s=rate, sqs=FakeSqs())  # type: ignore[arg-type]
        elapsed = time.monotonic() - started
        assert result.healed == 10
        return elapsed

    unlimited = timed(1_000_000.0)
    limited = timed(20.0)

    # 10 restores at 20/s: the first at once, then 9 gaps of 50 ms.
    assert limited >= 0.44, f"10 restores at 20/s took only {limited:.3f}s"
    assert limited / max(unlimited, 1e-3) >= 3, f"limited {limited:.3f}s vs unlimited {unlimited:.3f}s"


def test_result_counts_the_backup_keys_scanned() -> None:
    keys = {f"k{index}" for index in range(100)}
    s3 = make_s3(keys - {"k1"}, keys)

    with contextlib.redirect_stdout(io.StringIO()):
        result = sweep(s3, CONFIG, max_restores_per_s=0, sqs=FakeSqs())  # type: ignore[arg-type]

    assert result.missing == 1
    assert result.scanned == 100


def test_scheduled_function_sweeps_with_the_configured_rate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = make_s3({"b"}, {"a", "b", "c"})
    sqs = FakeSqs()
    monkeypatch.setattr(sweep_module, "_clients", lambda: (s3, sqs))
    monkeypatch.setenv("PRODUCTION_BUCKET", PROD)
    monkeypatch.setenv("BACKUP_BUCKET", BACKUP)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", QUEUE_URL)
    monkeypatch.setenv(sweep_module.RATE_VAR, "1000")

    summary = sweep_module.lambda_handler({"source": "aws.events"}, SimpleNamespace(aws_request_id="req-sched"))

    assert (summary["missing"], summary["healed"], summary["failed"]) == (2, 2, 0)
    assert "healed_keys" not in summary
    assert isinstance(summary["seconds"], float)
    lines = audit_of(capsys)
    assert [(line["key"], line["outcome"]) for line in lines] == [("a", "healed"), ("c", "healed"), (None, "completed")]
    assert all(line["request_id"] == "req-sched" for line in lines[:2])
