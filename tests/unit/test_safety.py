"""Loopback detection and the guard that keeps destructive actions off remote targets."""

from __future__ import annotations

import pytest

from provisioning.exceptions import UnsafeTargetError
from provisioning.safety import ALLOW_REMOTE_VAR, ALLOWED_BUCKETS_VAR, ensure_safe_target
from provisioning.target import AwsTarget, is_loopback_url

REMOTE = AwsTarget(endpoint_url="http://10.0.0.1:4566")
REAL_AWS = AwsTarget(endpoint_url=None, access_key_id=None, secret_access_key=None)
LOCAL = AwsTarget(endpoint_url="http://127.0.0.1:4566")


@pytest.fixture(autouse=True)
def _no_opt_in_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_REMOTE_VAR, raising=False)
    monkeypatch.delenv(ALLOWED_BUCKETS_VAR, raising=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4566",
        "http://127.5.5.5:5000",
        "http://localhost:4566",
        "https://localhost",
        "http://[::1]:4566",
    ],
)
def test_loopback_urls_are_recognised(url: str) -> None:
    assert is_loopback_url(url)
    assert AwsTarget(endpoint_url=url).is_loopback


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:4566",
        "http://192.168.1.1:4566",
        "https://example.com",
        "http://127.0.0.1.example.com:4566",
        "http://localhost.example.com",
        "not a url",
    ],
)
def test_non_loopback_urls_are_not_loopback(url: str) -> None:
    assert not is_loopback_url(url)
    assert not AwsTarget(endpoint_url=url).is_loopback


def test_real_aws_without_endpoint_is_not_loopback() -> None:
    assert not REAL_AWS.is_loopback


def test_loopback_target_is_accepted_without_any_opt_in() -> None:
    ensure_safe_target(LOCAL, ["anything"])


@pytest.mark.parametrize("target", [REMOTE, REAL_AWS], ids=["remote-endpoint", "real-aws"])
def test_non_loopback_target_is_refused_without_opt_in(target: AwsTarget) -> None:
    with pytest.raises(UnsafeTargetError, match=ALLOW_REMOTE_VAR):
        ensure_safe_target(target, ["prod"], allow_remote=False, allowed_buckets=["prod"])


def test_refusal_of_real_aws_says_where_it_would_have_acted() -> None:
    with pytest.raises(UnsafeTargetError, match="real AWS"):
        ensure_safe_target(REAL_AWS, ["prod"], allow_remote=False)


def test_opt_in_without_naming_every_bucket_is_refused_and_lists_the_unnamed_ones() -> None:
    with pytest.raises(UnsafeTargetError) as refused:
        ensure_safe_target(REMOTE, ["prod", "backup", "other"], allow_remote=True, allowed_buckets=["prod"])
    message = str(refused.value)
    assert "backup" in message
    assert "other" in message
    assert ALLOWED_BUCKETS_VAR in message


def test_opt_in_with_no_named_buckets_is_refused() -> None:
    with pytest.raises(UnsafeTargetError, match="prod"):
        ensure_safe_target(REMOTE, ["prod"], allow_remote=True, allowed_buckets=[])


@pytest.mark.parametrize("target", [REMOTE, REAL_AWS], ids=["remote-endpoint", "real-aws"])
def test_opt_in_with_every_bucket_named_is_accepted(target: AwsTarget) -> None:
    ensure_safe_target(target, ["prod", "backup"], allow_remote=True, allowed_buckets=["backup", "prod", "extra"])


@pytest.mark.parametrize("value", ["1", "true", "YES", " yes "])
def test_opt_in_and_buckets_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ALLOW_REMOTE_VAR, value)
    monkeypatch.setenv(ALLOWED_BUCKETS_VAR, " prod , backup,,")
    ensure_safe_target(REMOTE, ["prod", "backup"])


@pytest.mark.parametrize("value", ["", "0", "false", "no", "maybe"])
def test_environment_without_a_yes_is_not_an_opt_in(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ALLOW_REMOTE_VAR, value)
    monkeypatch.setenv(ALLOWED_BUCKETS_VAR, "prod")
    with pytest.raises(UnsafeTargetError, match=ALLOW_REMOTE_VAR):
        ensure_safe_target(REMOTE, ["prod"])


def test_bucket_missing_from_the_environment_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_REMOTE_VAR, "1")
    monkeypatch.setenv(ALLOWED_BUCKETS_VAR, "prod")
    with pytest.raises(UnsafeTargetError, match="backup"):
        ensure_safe_target(REMOTE, ["prod", "backup"])


def test_explicit_arguments_take_precedence_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_REMOTE_VAR, "1")
    monkeypatch.setenv(ALLOWED_BUCKETS_VAR, "prod")
    with pytest.raises(UnsafeTargetError, match=ALLOW_REMOTE_VAR):
        ensure_safe_target(REMOTE, ["prod"], allow_remote=False)
    with pytest.raises(UnsafeTargetError, match="prod"):
        ensure_safe_target(REMOTE, ["prod"], allowed_buckets=["backup"])
