"""``heal``: restore one removed object from backup, never clobbering a newer one.

A real botocore S3 client with a Stubber: every request is checked against the S3 model and against
the exact parameters expected, and any request not queued here fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from s3transfer.manager import TransferManager

from healer.config import HealerConfig
from healer.events import ObjectRemoved
from healer.exceptions import BackupObjectMissing, RestoreError
from healer.restore import Outcome, heal

PROD = "prod-bucket"
BACKUP = "backup-bucket"
CONFIG = HealerConfig(production_bucket=PROD, backup_bucket=BACKUP)
TOO_LARGE = "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"


def removed(key: str = "dir/a b+c ü.txt", bucket: str = PROD) -> ObjectRemoved:
    return ObjectRemoved(
        event_name="ObjectRemoved:Delete",
        event_time=datetime(2026, 12, 4, 20, 13, 46, tzinfo=UTC),
        bucket=bucket,
        key=key,
    )


def head_params(bucket: str, key: str) -> dict[str, Any]:
    return {"Bucket": bucket, "Key": key}


def copy_params(key: str) -> dict[str, Any]:
    return {
        "Bucket": PROD,
        "Key": key,
        "CopySource": {"Bucket": BACKUP, "Key": key},
        "MetadataDirective": "COPY",
        "IfNoneMatch": "*",
    }


@pytest.fixture
def s3() -> Any:
    return boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture
def stub(s3: Any) -> Iterator[Stubber]:
    with Stubber(s3) as stubber:
        yield stubber


def stub_missing_in_production(stub: Stubber, key: str, code: str = "404") -> None:
    stub.add_client_error(
        "head_object", service_error_code=code, http_status_code=404, expected_params=head_params(PROD, key)
    )


def test_key_back_in_production_is_kept_and_not_copied(s3: Any, stub: Stubber) -> None:
    record = removed()
    stub.add_response("head_object", {"ContentLength": 1}, head_params(PROD, record.key))
    # No copy_object queued: the Stubber fails the test if heal tries one.

    outcome = heal(record, s3, CONFIG)

    assert outcome.action == "none"
    assert outcome.outcome == "kept-existing"
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("not_found_code", ["404", "NotFound", "NoSuchKey"])
def test_key_missing_from_production_is_copied_from_backup(s3: Any, stub: Stubber, not_found_code: str) -> None:
    record = removed()
    stub_missing_in_production(stub, record.key, not_found_code)
    stub.add_response("copy_object", {"CopyObjectResult": {"ETag": '"abc"'}}, copy_params(record.key))

    outcome = heal(record, s3, CONFIG)

    assert outcome == Outcome("restored", "healed", "copied from backup")
    stub.assert_no_pending_responses()


def test_copy_source_key_is_passed_through_undecoded_and_unencoded(s3: Any, stub: Stubber) -> None:
    # The parser already decoded the key; heal must not quote or unquote it again.
    record = removed("100%2B sure/a+b.txt")
    stub_missing_in_production(stub, record.key)
    stub.add_response("copy_object", {}, copy_params("100%2B sure/a+b.txt"))

    assert heal(record, s3, CONFIG).outcome == "healed"
    stub.assert_no_pending_responses()


def test_key_missing_from_backup_raises_backup_object_missing(s3: Any, stub: Stubber) -> None:
    record = removed("gone.txt")
    stub_missing_in_production(stub, record.key)
    stub.add_client_error(
        "copy_object", service_error_code="NoSuchKey", http_status_code=404, expected_params=copy_params("gone.txt")
    )

    with pytest.raises(BackupObjectMissing) as caught:
        heal(record, s3, CONFIG)

    assert isinstance(caught.value, RestoreError)
    assert caught.value.key == "gone.txt"
    assert "'gone.txt'" in str(caught.value)
    assert repr(BACKUP) in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("code", ["PreconditionFailed", "412"])
def test_reupload_racing_the_copy_is_kept(s3: Any, stub: Stubber, code: str) -> None:
    record = removed()
    stub_missing_in_production(stub, record.key)
    stub.add_client_error(
        "copy_object", service_error_code=code, http_status_code=412, expected_params=copy_params(record.key)
    )

    outcome = heal(record, s3, CONFIG)

    assert outcome.action == "none"
    assert outcome.outcome == "kept-existing"
    stub.assert_no_pending_responses()


def test_event_for_another_bucket_is_ignored_without_any_request(s3: Any, stub: Stubber) -> None:
    outcome = heal(removed(bucket="some-other-bucket"), s3, CONFIG)

    assert outcome.action == "none"
    assert outcome.outcome == "ignored"
    assert "'some-other-bucket'" in outcome.detail
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status"),
    [pytest.param("AccessDenied", 403, id="access-denied"), pytest.param("InternalError", 500, id="internal-error")],
)
def test_other_errors_on_head_propagate(s3: Any, stub: Stubber, code: str, status: int) -> None:
    record = removed()
    stub.add_client_error(
        "head_object", service_error_code=code, http_status_code=status, expected_params=head_params(PROD, record.key)
    )

    with pytest.raises(ClientError) as caught:
        heal(record, s3, CONFIG)

    assert caught.value.response["Error"]["Code"] == code
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        pytest.param("AccessDenied", 403, "Access Denied", id="access-denied"),
        pytest.param("InternalError", 500, "We encountered an internal error", id="internal-error"),
        pytest.param("SlowDown", 503, "Please reduce your request rate", id="slow-down"),
        pytest.param("InvalidRequest", 400, "The copy source must be specified", id="other-invalid-request"),
    ],
)
def test_other_errors_on_copy_propagate(s3: Any, stub: Stubber, code: str, status: int, message: str) -> None:
    record = removed()
    stub_missing_in_production(stub, record.key)
    stub.add_client_error(
        "copy_object",
        service_error_code=code,
        service_message=message,
        http_status_code=status,
        expected_params=copy_params(record.key),
    )

    with pytest.raises(ClientError) as caught:
        heal(record, s3, CONFIG)

    assert caught.value.response["Error"]["Code"] == code
    stub.assert_no_pending_responses()


# --- objects over 5 GiB: CopyObject refuses, a managed multipart copy is used --------------------------


class RecordingCopy:
    """Stands in for boto3's managed ``s3.copy`` transfer: records its arguments, sends nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))


def stub_too_large_for_copy_object(stub: Stubber, key: str) -> None:
    stub_missing_in_production(stub, key)
    stub.add_client_error(
        "copy_object",
        service_error_code="InvalidRequest",
        service_message=TOO_LARGE,
        http_status_code=400,
        expected_params=copy_params(key),
    )


def test_too_large_for_copy_object_falls_back_to_multipart_copy_keeping_type_and_metadata(
    s3: Any, stub: Stubber
) -> None:
    record = removed("video/big.mp4")
    stub_too_large_for_copy_object(stub, record.key)
    stub.add_response(
        "head_object",
        {"ContentLength": 6 * 1024**3, "ContentType": "video/mp4", "Metadata": {"owner": "ops"}},
        head_params(BACKUP, record.key),
    )
    stub_missing_in_production(stub, record.key)  # checked again right before the long copy
    s3.copy = managed_copy = RecordingCopy()

    outcome = heal(record, s3, CONFIG)

    assert managed_copy.calls == [
        (
            ({"Bucket": BACKUP, "Key": "video/big.mp4"}, PROD, "video/big.mp4"),
            {"ExtraArgs": {"ContentType": "video/mp4", "Metadata": {"owner": "ops"}}},
        )
    ]
    assert outcome.action == "restored"
    assert outcome.outcome == "healed"
    assert str(6 * 1024**3) in outcome.detail
    stub.assert_no_pending_responses()


def test_multipart_copy_without_content_type_passes_only_metadata(s3: Any, stub: Stubber) -> None:
    record = removed("big.bin")
    stub_too_large_for_copy_object(stub, record.key)
    stub.add_response("head_object", {"ContentLength": 6 * 1024**3}, head_params(BACKUP, record.key))
    stub_missing_in_production(stub, record.key)
    s3.copy = managed_copy = RecordingCopy()

    heal(record, s3, CONFIG)

    ((_, kwargs),) = managed_copy.calls
    assert kwargs == {"ExtraArgs": {"Metadata": {}}}
    stub.assert_no_pending_responses()


def test_multipart_copy_extra_args_are_ones_the_managed_copy_accepts(s3: Any, stub: Stubber) -> None:
    # s3transfer rejects unknown ExtraArgs with ValueError before sending anything.
    record = removed("big.bin")
    stub_too_large_for_copy_object(stub, record.key)
    source = {"ContentLength": 1, "ContentType": "a/b", "Metadata": {"k": "v"}}
    stub.add_response("head_object", source, head_params(BACKUP, record.key))
    stub_missing_in_production(stub, record.key)
    s3.copy = managed_copy = RecordingCopy()

    heal(record, s3, CONFIG)

    ((_, kwargs),) = managed_copy.calls
    assert set(kwargs["ExtraArgs"]) <= set(TransferManager.ALLOWED_COPY_ARGS)


def test_multipart_copy_leaves_an_object_reuploaded_meanwhile_alone(s3: Any, stub: Stubber) -> None:
    record = removed("big.bin")
    stub_too_large_for_copy_object(stub, record.key)
    stub.add_response("head_object", {"ContentLength": 6 * 1024**3}, head_params(BACKUP, record.key))
    stub.add_response("head_object", {"ContentLength": 5}, head_params(PROD, record.key))  # re-uploaded
    s3.copy = managed_copy = RecordingCopy()

    outcome = heal(record, s3, CONFIG)

    assert outcome.outcome == "kept-existing"
    assert managed_copy.calls == []
    stub.assert_no_pending_responses()


def test_multipart_copy_with_backup_gone_is_backup_object_missing(s3: Any, stub: Stubber) -> None:
    record = removed("big.bin")
    stub_too_large_for_copy_object(stub, record.key)
    stub.add_client_error(
        "head_object", service_error_code="404", http_status_code=404, expected_params=head_params(BACKUP, record.key)
    )

    with pytest.raises(BackupObjectMissing, match=r"big\.bin"):
        heal(record, s3, CONFIG)
