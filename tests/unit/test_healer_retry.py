"""Transient AWS errors are retried with a bound; denials and missing keys are not retried at all."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from botocore import exceptions as botocore_errors
from botocore.exceptions import ClientError
from tenacity import RetryCallState, wait_none

import healer.handler as handler_module
import healer.retry as retry_module
from healer.config import HealerConfig
from healer.exceptions import HealingFailed
from healer.retry import MAX_ATTEMPTS, MAX_SECONDS, is_transient

from .fakes import BACKUP, PROD, FakeS3, client_error, sns_removal_event

CONFIG = HealerConfig(PROD, BACKUP)
CONTEXT = SimpleNamespace(aws_request_id="req-retry")


# --- is_transient ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        client_error("SlowDown", 503),
        client_error("Throttling", 400),
        client_error("ThrottlingException", 400),
        client_error("TooManyRequestsException", 429),
        client_error("RequestLimitExceeded", 503),
        client_error("InternalError", 500),
        client_error("ServiceUnavailable", 503),
        client_error("RequestTimeout", 400),
        client_error("503", 503),  # what botocore reports for a bodiless 503
        client_error("500", 500),
        botocore_errors.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        botocore_errors.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
        botocore_errors.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        botocore_errors.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
        botocore_errors.ResponseStreamingError(error="connection reset while reading the body"),
    ],
    ids=lambda error: (
        type(error).__name__ + ("-" + error.response["Error"]["Code"] if isinstance(error, ClientError) else "")
    ),
)
def test_throttling_server_errors_and_dropped_connections_are_transient(error: BaseException) -> None:
    assert is_transient(error) is True


@pytest.mark.parametrize(
    "error",
    [
        client_error("AccessDenied", 403),
        client_error("NoSuchKey", 404),
        client_error("404", 404),
        client_error("PreconditionFailed", 412),
        client_error("InvalidAccessKeyId", 403),
        client_error("NoSuchBucket", 404),
        client_error("", 400),
        botocore_errors.ParamValidationError(report="bad parameter"),
        ValueError("not an AWS error"),
        KeyboardInterrupt(),
    ],
    ids=lambda error: (
        type(error).__name__ + ("-" + error.response["Error"]["Code"] if isinstance(error, ClientError) else "")
    ),
)
def test_denials_missing_keys_and_preconditions_are_not_transient(error: BaseException) -> None:
    assert is_transient(error) is False


# --- the policy itself -------------------------------------------------------------------------------------


def _state(attempt: int, seconds: float) -> RetryCallState:
    policy = retry_module.transient_retrying()
    state = RetryCallState(policy, fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.outcome_timestamp = state.start_time + seconds
    return state


def test_policy_stops_after_max_attempts_or_max_seconds() -> None:
    policy = retry_module.transient_retrying()

    assert not policy.stop(_state(MAX_ATTEMPTS - 1, 1.0))
    assert policy.stop(_state(MAX_ATTEMPTS, 1.0))
    assert not policy.stop(_state(2, MAX_SECONDS - 1))
    assert policy.stop(_state(2, MAX_SECONDS + 0.1))


def test_policy_waits_are_jittered_and_capped() -> None:
    policy = retry_module.transient_retrying()

    waits = {attempt: [policy.wait(_state(attempt, 0.0)) for _ in range(40)] for attempt in range(1, 12)}

    assert all(0 <= wait <= 3.0 for samples in waits.values() for wait in samples)
    assert len(set(waits[4])) > 1, "full jitter: waits differ"
    assert max(waits[11]) > max(waits[1]), "backoff grows"


def test_each_call_gets_a_fresh_policy() -> None:
    assert retry_module.transient_retrying() is not retry_module.transient_retrying()


# --- through lambda_handler -----------------------------------------------------------------------------------


def scripted_s3(keys: list[str]) -> FakeS3:
    """Backup holds every key; ``get_errors``/``put_errors`` list errors to raise on successive calls."""
    return FakeS3({PROD: {}, BACKUP: {key: key.encode() * 3 for key in keys}})


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    """The production policy (same stop, retry and wait), with its sleeps recorded instead of slept."""
    production = retry_module.transient_retrying
    monkeypatch.setattr(handler_module, "transient_retrying", lambda: production().copy(sleep=sleeps.append))


@pytest.fixture
def no_wait_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production stop/retry predicates with no wait at all."""
    production = retry_module.transient_retrying
    monkeypatch.setattr(handler_module, "transient_retrying", lambda: production().copy(wait=wait_none()))


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[Any, list[dict[str, Any]]]]:
    def invoke(fake: FakeS3, event: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
        monkeypatch.setattr(handler_module, "_s3", lambda: fake)
        monkeypatch.setattr(handler_module, "_config", lambda: CONFIG)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                result: Any = handler_module.lambda_handler(event, CONTEXT)
            except HealingFailed as exc:
                result = exc
        return result, [json.loads(line) for line in out.getvalue().split("\n") if line]

    return invoke


@pytest.fixture(autouse=True)
def _never_sleep_for_real(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A forgotten patch must fail loudly, not make the suite slow.
    import tenacity.nap

    def refuse(seconds: float) -> None:
        if seconds > 0:
            raise AssertionError(f"a test slept for real ({seconds:.3f}s)")

    monkeypatch.setattr(tenacity.nap.time, "sleep", refuse)
    yield


@pytest.mark.usefixtures("no_wait_retries")
def test_twice_slowed_down_then_healed(run: Callable[..., Any]) -> None:
    fake = scripted_s3(["a.txt"])
    fake.get_errors["a.txt"] = [client_error("SlowDown", 503), client_error("SlowDown", 503), None]

    counts, lines = run(fake, sns_removal_event("a.txt"))

    assert counts["healed"] == 1 and counts["failed"] == 0
    assert fake.count("get_object", "a.txt") == 3
    assert fake.count("put_object", "a.txt") == 1
    assert fake.objects[PROD]["a.txt"] == b"a.txt" * 3
    assert [(line["key"], line["outcome"]) for line in lines] == [("a.txt", "healed")]


@pytest.mark.usefixtures("no_wait_retries")
def test_throttled_put_is_retried_with_a_fresh_read(run: Callable[..., Any]) -> None:
    fake = scripted_s3(["a.txt"])
    fake.put_errors["a.txt"] = [client_error("503", 503, "PutObject"), client_error("InternalError", 500), None]

    counts, _ = run(fake, sns_removal_event("a.txt"))

    assert counts["healed"] == 1
    assert (fake.count("get_object", "a.txt"), fake.count("put_object", "a.txt")) == (3, 3)


@pytest.mark.usefixtures("no_wait_retries")
def test_dropped_connection_is_retried(run: Callable[..., Any]) -> None:
    fake = scripted_s3(["a.txt"])
    fake.get_errors["a.txt"] = [botocore_errors.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), None]

    counts, _ = run(fake, sns_removal_event("a.txt"))

    assert counts["healed"] == 1
    assert fake.count("get_object", "a.txt") == 2


@pytest.mark.usefixtures("no_wait_retries")
def test_access_denied_is_not_retried_and_fails_the_record(run: Callable[..., Any]) -> None:
    fake = scripted_s3(["denied.txt", "b.txt"])
    fake.get_errors["denied.txt"] = [client_error("AccessDenied", 403)]

    failed, lines = run(fake, sns_removal_event("denied.txt", "b.txt"))

    assert isinstance(failed, HealingFailed)
    assert fake.count("get_object", "denied.txt") == 1
    assert "denied.txt" not in fake.objects[PROD]
    assert fake.objects[PROD]["b.txt"] == b"b.txt" * 3  # the sibling still heals
    (failure,) = failed.failures
    assert "'denied.txt'" in failure and "AccessDenied" in failure
    assert [(line["key"], line["outcome"]) for line in lines] == [("denied.txt", "error"), ("b.txt", "healed")]


@pytest.mark.usefixtures("no_wait_retries")
def test_missing_backup_is_not_retried(run: Callable[..., Any]) -> None:
    fake = scripted_s3([])
    fake.objects[BACKUP].clear()
    fake.get_errors["gone.txt"] = [client_error("NoSuchKey", 404)]

    failed, lines = run(fake, sns_removal_event("gone.txt"))

    assert isinstance(failed, HealingFailed)
    assert fake.count("get_object", "gone.txt") == 1
    assert lines[0]["outcome"] == "failed"
    assert "BackupObjectMissing" in lines[0]["detail"]


@pytest.mark.usefixtures("fast_retries")
def test_staying_throttled_gives_up_after_max_attempts(run: Callable[..., Any], sleeps: list[float]) -> None:
    fake = scripted_s3(["hot.txt", "b.txt"])
    fake.get_errors["hot.txt"] = [client_error("SlowDown", 503)]

    failed, lines = run(fake, sns_removal_event("hot.txt", "b.txt"))

    assert isinstance(failed, HealingFailed)
    assert fake.count("get_object", "hot.txt") == MAX_ATTEMPTS
    assert len(sleeps) == MAX_ATTEMPTS - 1, "one backoff between attempts"
    assert all(0 <= wait <= 3.0 for wait in sleeps)
    assert "hot.txt" not in fake.objects[PROD]
    assert fake.objects[PROD]["b.txt"] == b"b.txt" * 3
    (failure,) = failed.failures
    assert "SlowDown" in failure
    assert [(line["key"], line["outcome"]) for line in lines] == [("hot.txt", "error"), ("b.txt", "healed")]
    assert "SlowDown" in lines[0]["detail"]


@pytest.mark.usefixtures("no_wait_retries")
def test_ambiguous_put_that_landed_is_not_rewritten_and_does_not_fail(run: Callable[..., Any]) -> None:
    # The first PutObject is applied but answered with a 503; the retry's conditional put sees it.
    fake = scripted_s3(["a.txt"])
    fake.put_errors["a.txt"] = [client_error("503", 503, "PutObject"), None]
    fake.apply_then_fail.add("a.txt")

    counts, lines = run(fake, sns_removal_event("a.txt"))

    assert counts["failed"] == 0
    assert counts["healed"] + counts["kept"] == 1
    assert fake.objects[PROD]["a.txt"] == b"a.txt" * 3
    assert lines[0]["outcome"] in {"healed", "kept-existing"}
