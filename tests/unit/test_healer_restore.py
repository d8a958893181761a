"""``heal``: restore one removed object from backup, never clobbering a newer one.

A real botocore S3 client with a Stubber: every request is checked against the S3 model and against
the exact parameters expected, and any request not queued here fails the test.

Objects up to ``INLINE_RESTORE_LIMIT`` are read from the backup and written with a conditional
``PutObject(IfNoneMatch='*')``; larger ones are copied server-side. The large-object tests lower the
limit so their bodies stay a few bytes long.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from s3transfer.manager import TransferManager

import healer.restore as restore_module
from healer.config import HealerConfig
from healer.events import ObjectRemoved
from healer.exceptions import BackupObjectMissing, IntegrityError, RestoreError
from healer.restore import INLINE_RESTORE_LIMIT, Outcome, heal

PROD = "prod-bucket"
BACKUP = "backup-bucket"
CONFIG = HealerConfig(production_bucket=PROD, backup_bucket=BACKUP)
TOO_LARGE = "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"
DATA = b"the object's bytes\n"
# Every header heal carries from the backup object to the restored one, as GetObject/HeadObject return them.
HEADERS: dict[str, Any] = {
    "ContentType": "text/plain; charset=utf-8",
    "CacheControl": "max-age=60",
    "ContentDisposition": 'attachment; filename="a.txt"',
    "ContentEncoding": "identity",
    "ContentLanguage": "en-GB",
    "Expires": datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
}
METADATA = {"owner": "ops", "origin": "upload-service"}
SMALL_LIMIT = 4  # what the large-object tests lower INLINE_RESTORE_LIMIT to
LARGE = b"0123456789"  # longer than SMALL_LIMIT


def removed(key: str = "dir/a b+c ü.txt", bucket: str = PROD) -> ObjectRemoved:
    return ObjectRemoved(
        event_name="ObjectRemoved:Delete",
        event_time=datetime(2026, 12, 4, 20, 13, 46, tzinfo=UTC),
        bucket=bucket,
        key=key,
    )


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def head_params(bucket: str, key: str) -> dict[str, Any]:
    return {"Bucket": bucket, "Key": key}


def get_params(key: str) -> dict[str, Any]:
    return {"Bucket": BACKUP, "Key": key}


def put_params(key: str, body: bytes, metadata: dict[str, str] | None = None, **headers: Any) -> dict[str, Any]:
    return {
        "Bucket": PROD,
        "Key": key,
        "Body": body,
        "Metadata": metadata if metadata is not None else {},
        "IfNoneMatch": "*",
        **headers,
    }


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


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore_module, "INLINE_RESTORE_LIMIT", SMALL_LIMIT)


def stub_backup_get(
    stub: Stubber,
    key: str,
    data: bytes = DATA,
    *,
    etag: str | None = None,
    content_length: int | None = None,
    **fields: Any,
) -> io.BytesIO:
    """Queue the GetObject on the backup; return the stream behind its Body (to see if it was closed)."""
    raw = io.BytesIO(data)
    length = len(data) if content_length is None else content_length
    response = {
        "Body": StreamingBody(raw, len(data)),
        "ContentLength": length,
        "ETag": md5_etag(data) if etag is None else etag,
        **fields,
    }
    stub.add_response("get_object", response, get_params(key))
    return raw


def stub_error(
    stub: Stubber, operation: str, code: str, status: int, params: dict[str, Any], message: str = ""
) -> None:
    stub.add_client_error(
        operation,
        service_error_code=code,
        service_message=message or code,
        http_status_code=status,
        expected_params=params,
    )


def assert_backup_object_missing(caught: pytest.ExceptionInfo[BackupObjectMissing], key: str) -> None:
    assert isinstance(caught.value, RestoreError)
    assert caught.value.key == key
    assert repr(key) in str(caught.value)
    assert repr(BACKUP) in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)


def test_inline_limit_is_16_mib() -> None:
    assert INLINE_RESTORE_LIMIT == 16 * 1024 * 1024


def test_event_for_another_bucket_is_ignored_without_any_request(s3: Any, stub: Stubber) -> None:
    outcome = heal(removed(bucket="some-other-bucket"), s3, CONFIG)

    assert outcome.action == "none"
    assert outcome.outcome == "ignored"
    assert "'some-other-bucket'" in outcome.detail
    stub.assert_no_pending_responses()


# --- small objects: GetObject from backup, conditional PutObject to production ---------------------------


def test_small_object_is_put_back_conditionally_with_its_metadata_and_headers(s3: Any, stub: Stubber) -> None:
    record = removed()
    stub_backup_get(stub, record.key, Metadata=METADATA, **HEADERS)
    stub.add_response("put_object", {"ETag": md5_etag(DATA)}, put_params(record.key, DATA, METADATA, **HEADERS))

    outcome = heal(record, s3, CONFIG)

    assert outcome == Outcome("restored", "healed", f"restored {len(DATA)} bytes from backup")
    stub.assert_no_pending_responses()


def test_small_object_without_optional_headers_is_put_with_empty_metadata_only(s3: Any, stub: Stubber) -> None:
    # No Metadata in the response at all, and no optional header: none may be invented (or sent as None).
    record = removed("plain.bin")
    stub_backup_get(stub, record.key)
    stub.add_response("put_object", {}, put_params(record.key, DATA))

    assert heal(record, s3, CONFIG).outcome == "healed"
    stub.assert_no_pending_responses()


def test_only_the_headers_present_on_the_backup_are_carried_over(s3: Any, stub: Stubber) -> None:
    record = removed("page.html")
    present = {"ContentType": "text/html", "CacheControl": "no-cache"}
    stub_backup_get(stub, record.key, Metadata={"k": "v"}, ContentLanguage="", **present)  # empty counts as absent
    stub.add_response("put_object", {}, put_params(record.key, DATA, {"k": "v"}, **present))

    assert heal(record, s3, CONFIG).outcome == "healed"
    stub.assert_no_pending_responses()


def test_key_is_passed_through_undecoded_and_unencoded(s3: Any, stub: Stubber) -> None:
    # The parser already decoded the key; heal must not quote or unquote it again.
    record = removed("100%2B sure/a+b.txt")
    stub_backup_get(stub, "100%2B sure/a+b.txt")
    stub.add_response("put_object", {}, put_params("100%2B sure/a+b.txt", DATA))

    assert heal(record, s3, CONFIG).outcome == "healed"
    stub.assert_no_pending_responses()


def test_empty_object_is_restored(s3: Any, stub: Stubber) -> None:
    record = removed("empty.txt")
    stub_backup_get(stub, record.key, b"")
    stub.add_response("put_object", {}, put_params(record.key, b""))

    assert heal(record, s3, CONFIG) == Outcome("restored", "healed", "restored 0 bytes from backup")
    stub.assert_no_pending_responses()


def test_object_of_exactly_the_limit_is_still_restored_inline(s3: Any, stub: Stubber) -> None:
    record = removed("edge.bin")
    data = b"x" * INLINE_RESTORE_LIMIT  # the real 16 MiB: the bound is inclusive
    stub_backup_get(stub, record.key, data)
    stub.add_response("put_object", {}, put_params(record.key, data))

    assert heal(record, s3, CONFIG).outcome == "healed"
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("code", ["PreconditionFailed", "412"])
def test_object_reuploaded_since_the_delete_is_kept_and_the_put_was_the_only_write(
    s3: Any, stub: Stubber, code: str
) -> None:
    record = removed()
    stub_backup_get(stub, record.key, Metadata=METADATA)
    stub_error(stub, "put_object", code, 412, put_params(record.key, DATA, METADATA))
    # Nothing else is queued: a HEAD, a second put or a copy would fail the test.

    outcome = heal(record, s3, CONFIG)

    assert outcome.action == "none"
    assert outcome.outcome == "kept-existing"
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("not_found_code", ["NoSuchKey", "404", "NotFound"])
def test_key_missing_from_backup_raises_backup_object_missing_without_writing(
    s3: Any, stub: Stubber, not_found_code: str
) -> None:
    record = removed("gone.txt")
    stub_error(stub, "get_object", not_found_code, 404, get_params("gone.txt"))

    with pytest.raises(BackupObjectMissing) as caught:
        heal(record, s3, CONFIG)

    assert_backup_object_missing(caught, "gone.txt")
    stub.assert_no_pending_responses()


def test_bytes_not_matching_the_backup_etag_raise_integrity_error_without_writing(s3: Any, stub: Stubber) -> None:
    record = removed("corrupt.txt")
    wrong = hashlib.md5(b"something else").hexdigest()
    stub_backup_get(stub, record.key, etag=f'"{wrong}"')
    # No put_object queued: the Stubber fails the test if heal writes the bad bytes.

    with pytest.raises(IntegrityError) as caught:
        heal(record, s3, CONFIG)

    assert isinstance(caught.value, RestoreError)
    assert caught.value.key == "corrupt.txt"
    assert "'corrupt.txt'" in str(caught.value)
    assert wrong in str(caught.value)
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    "etag",
    [
        pytest.param('"0123456789abcdef0123456789abcdef-3"', id="multipart"),
        pytest.param("0123456789abcdef0123456789abcdef-12", id="multipart-unquoted"),
        pytest.param("", id="no-etag"),
    ],
)
def test_etag_that_is_not_an_md5_is_not_checked(s3: Any, stub: Stubber, etag: str) -> None:
    # A multipart ETag is an MD5 of the parts' MD5s, not of the bytes: comparing would always fail.
    record = removed("parts.bin")
    stub_backup_get(stub, record.key, etag=etag)
    stub.add_response("put_object", {}, put_params(record.key, DATA))

    assert heal(record, s3, CONFIG).outcome == "healed"
    stub.assert_no_pending_responses()


def test_unquoted_single_part_etag_is_checked_too(s3: Any, stub: Stubber) -> None:
    record = removed("x.txt")
    stub_backup_get(stub, record.key, etag=hashlib.md5(b"other").hexdigest())

    with pytest.raises(IntegrityError):
        heal(record, s3, CONFIG)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        pytest.param("AccessDenied", 403, id="access-denied"),
        pytest.param("InternalError", 500, id="internal-error"),
        pytest.param("SlowDown", 503, id="slow-down"),
    ],
)
def test_other_errors_reading_the_backup_propagate(s3: Any, stub: Stubber, code: str, status: int) -> None:
    record = removed()
    stub_error(stub, "get_object", code, status, get_params(record.key))

    with pytest.raises(ClientError) as caught:
        heal(record, s3, CONFIG)

    assert caught.value.response["Error"]["Code"] == code
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        pytest.param("AccessDenied", 403, id="access-denied"),
        pytest.param("InternalError", 500, id="internal-error"),
        pytest.param("SlowDown", 503, id="slow-down"),
        pytest.param("ConditionalRequestConflict", 409, id="concurrent-conditional-write"),
        pytest.param("NoSuchBucket", 404, id="no-production-bucket"),
    ],
)
def test_other_errors_on_put_propagate(s3: Any, stub: Stubber, code: str, status: int) -> None:
    record = removed()
    stub_backup_get(stub, record.key)
    stub_error(stub, "put_object", code, status, put_params(record.key, DATA))

    with pytest.raises(ClientError) as caught:
        heal(record, s3, CONFIG)

    assert caught.value.response["Error"]["Code"] == code
    stub.assert_no_pending_responses()


# --- objects over INLINE_RESTORE_LIMIT: server-side CopyObject ------------------------------------------


def stub_missing_in_production(stub: Stubber, key: str, code: str = "404") -> None:
    stub_error(stub, "head_object", code, 404, head_params(PROD, key))


@pytest.mark.usefixtures("small_limit")
@pytest.mark.parametrize("not_found_code", ["404", "NotFound", "NoSuchKey"])
def test_large_object_missing_from_production_is_copied_server_side(
    s3: Any, stub: Stubber, not_found_code: str
) -> None:
    record = removed()
    body = stub_backup_get(stub, record.key, LARGE, Metadata=METADATA, **HEADERS)
    stub_missing_in_production(stub, record.key, not_found_code)
    stub.add_response("copy_object", {"CopyObjectResult": {"ETag": md5_etag(LARGE)}}, copy_params(record.key))
    # No put_object queued: the bytes must not pass through the function.

    outcome = heal(record, s3, CONFIG)

    assert outcome == Outcome("restored", "healed", "copied from backup server-side")
    assert body.closed  # the GET's stream is released, not left open
    stub.assert_no_pending_responses()


def test_object_over_the_real_limit_is_copied_without_reading_its_body(s3: Any, stub: Stubber) -> None:
    # ContentLength decides: the (tiny) body claiming 16 MiB + 1 is closed, never read.
    record = removed("big.bin")
    body = stub_backup_get(stub, record.key, LARGE, etag='"not-checked"', content_length=INLINE_RESTORE_LIMIT + 1)
    stub_missing_in_production(stub, record.key)
    stub.add_response("copy_object", {}, copy_params(record.key))

    assert heal(record, s3, CONFIG).outcome == "healed"
    assert body.closed
    stub.assert_no_pending_responses()


@pytest.mark.usefixtures("small_limit")
def test_large_object_back_in_production_is_kept_and_not_copied(s3: Any, stub: Stubber) -> None:
    record = removed()
    stub_backup_get(stub, record.key, LARGE)
    stub.add_response("head_object", {"ContentLength": 1}, head_params(PROD, record.key))
    # No copy_object queued: the Stubber fails the test if heal tries one.

    outcome = heal(record, s3, CONFIG)

    assert outcome.action == "none"
    assert outcome.outcome == "kept-existing"
    stub.assert_no_pending_responses()


@pytest.mark.usefixtures("small_limit")
def test_large_object_gone_from_backup_before_the_copy_is_backup_object_missing(s3: Any, stub: Stubber) -> None:
    record = removed("gone.bin")
    stub_backup_get(stub, record.key, LARGE)
    stub_missing_in_production(stub, record.key)
    stub_error(stub, "copy_object", "NoSuchKey", 404, copy_params(record.key))

    with pytest.raises(BackupObjectMissing) as caught:
        heal(record, s3, CONFIG)

    assert_backup_object_missing(caught, "gone.bin")
    stub.assert_no_pending_responses()


@pytest.mark.usefixtures("small_limit")
@pytest.mark.parametrize("code", ["PreconditionFailed", "412"])
def test_reupload_racing_the_copy_is_kept(s3: Any, stub: Stubber, code: str) -> None:
    record = removed()
    stub_backup_get(stub, record.key, LARGE)
    stub_missing_in_production(stub, record.key)
    stub_error(stub, "copy_object", code, 412, copy_params(record.key))

    outcome = heal(record, s3, CONFIG)

    assert outcome.action == "none"
    assert outcome.outcome == "kept-existing"
    stub.assert_no_pending_responses()


@pytest.mark.usefixtures("small_limit")
@pytest.mark.parametrize(
    ("code", "status"),
    [pytest.param("AccessDenied", 403, id="access-denied"), pytest.param("InternalError", 500, id="internal-error")],
)
def test_other_errors_on_the_production_head_propagate(s3: Any, stub: Stubber, code: str, status: int) -> None:
    record = removed()
    stub_backup_get(stub, record.key, LARGE)
    stub_error(stub, "head_object", code, status, head_params(PROD, record.key))

    with pytest.raises(ClientError) as caught:
        heal(record, s3, CONFIG)

    assert caught.value.response["Error"]["Code"] == code
    stub.assert_no_pending_responses()


@pytest.mark.usefixtures("small_limit")
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
    stub_backup_get(stub, record.key, LARGE)
    stub_missing_in_production(stub, record.key)
    stub_error(stub, "copy_object", code, status, copy_params(record.key), message)

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


@pytest.fixture
def managed_copy(s3: Any) -> RecordingCopy:
    s3.copy = recorder = RecordingCopy()
    return recorder


def stub_too_large_for_copy_object(stub: Stubber, key: str) -> None:
    # The GET reports the real size; its body is never read on this path.
    stub_backup_get(stub, key, LARGE, etag='"abc-700"', content_length=6 * 1024**3)
    stub_missing_in_production(stub, key)
    stub_error(stub, "copy_object", "InvalidRequest", 400, copy_params(key), TOO_LARGE)


def test_too_large_for_copy_object_falls_back_to_multipart_copy_keeping_headers_and_metadata(
    s3: Any, stub: Stubber, managed_copy: RecordingCopy
) -> None:
    record = removed("video/big.mp4")
    stub_too_large_for_copy_object(stub, record.key)
    stub.add_response(
        "head_object",
        {"ContentLength": 6 * 1024**3, "Metadata": METADATA, **HEADERS},
        head_params(BACKUP, record.key),
    )
    stub_missing_in_production(stub, record.key)  # checked again right before the long copy

    outcome = heal(record, s3, CONFIG)

    assert managed_copy.calls == [
        (
            ({"Bucket": BACKUP, "Key": "video/big.mp4"}, PROD, "video/big.mp4"),
            {"ExtraArgs": {"Metadata": METADATA, **HEADERS}},
        )
    ]
    assert outcome.action == "restored"
    assert outcome.outcome == "healed"
    assert str(6 * 1024**3) in outcome.detail
    stub.assert_no_pending_responses()


def test_multipart_copy_without_headers_passes_only_metadata(
    s3: Any, stub: Stubber, managed_copy: RecordingCopy
) -> None:
    record = removed("big.bin")
    stub_too_large_for_copy_object(stub, record.key)
    stub.add_response("head_object", {"ContentLength": 6 * 1024**3}, head_params(BACKUP, record.key))
    stub_missing_in_production(stub, record.key)

    heal(record, s3, CONFIG)

    ((_, kwargs),) = managed_copy.calls
    assert kwargs == {"ExtraArgs": {"Metadata": {}}}
    stub.assert_no_pending_responses()


def test_multipart_copy_extra_args_are_ones_the_managed_copy_accepts(
    s3: Any, stub: Stubber, managed_copy: RecordingCopy
) -> None:
    # s3transfer rejects unknown ExtraArgs with ValueError before sending anything.
    record = removed("big.bin")
    stub_too_large_for_copy_object(stub, record.key)
    source = {"ContentLength": 1, "Metadata": {"k": "v"}, **HEADERS}
    stub.add_response("head_object", source, head_params(BACKUP, record.key))
    stub_missing_in_production(stub, record.key)

    heal(record, s3, CONFIG)

    ((_, kwargs),) = managed_copy.calls
    assert set(kwargs["ExtraArgs"]) == {"Metadata", *HEADERS}
    assert set(kwargs["ExtraArgs"]) <= set(TransferManager.ALLOWED_COPY_ARGS)


def test_multipart_copy_leaves_an_object_reuploaded_meanwhile_alone(
    s3: Any, stub: Stubber, managed_copy: RecordingCopy
) -> None:
    record = removed("big.bin")
    stub_too_large_for_copy_object(stub, record.key)
    stub.add_response("head_object", {"ContentLength": 6 * 1024**3}, head_params(BACKUP, record.key))
    stub.add_response("head_object", {"ContentLength": 5}, head_params(PROD, record.key))  # re-uploaded

    outcome = heal(record, s3, CONFIG)

    assert outcome.action == "none"
    assert outcome.outcome == "kept-existing"
    assert managed_copy.calls == []
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("not_found_code", ["404", "NotFound", "NoSuchKey"])
def test_multipart_copy_with_backup_gone_is_backup_object_missing(
    s3: Any, stub: Stubber, managed_copy: RecordingCopy, not_found_code: str
) -> None:
    record = removed("big.bin")
    stub_too_large_for_copy_object(stub, record.key)
    stub_error(stub, "head_object", not_found_code, 404, head_params(BACKUP, record.key))

    with pytest.raises(BackupObjectMissing) as caught:
        heal(record, s3, CONFIG)

    assert_backup_object_missing(caught, "big.bin")
    assert managed_copy.calls == []
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("bucket", [BACKUP, PROD])
def test_multipart_copy_other_head_errors_propagate_without_copying(
    s3: Any, stub: Stubber, managed_copy: RecordingCopy, bucket: str
) -> None:
    record = removed("big.bin")
    stub_too_large_for_copy_object(stub, record.key)
    if bucket == PROD:
        stub.add_response("head_object", {"ContentLength": 6 * 1024**3}, head_params(BACKUP, record.key))
    stub_error(stub, "head_object", "AccessDenied", 403, head_params(bucket, record.key))

    with pytest.raises(ClientError) as caught:
        heal(record, s3, CONFIG)

    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert managed_copy.calls == []
    stub.assert_no_pending_responses()


def test_tags_of_a_small_object_are_read_and_put_back(s3: Any, stub: Stubber) -> None:
    record = removed("tagged.txt")
    stub_backup_get(stub, record.key, TagCount=2)
    stub.add_response(
        "get_object_tagging",
        {"TagSet": [{"Key": "team", "Value": "data ops"}, {"Key": "tier", "Value": "gold"}]},
        {"Bucket": BACKUP, "Key": record.key},
    )
    stub.add_response("put_object", {}, {**put_params(record.key, DATA), "Tagging": "team=data+ops&tier=gold"})

    assert heal(record, s3, CONFIG).outcome == "healed"
    stub.assert_no_pending_responses()


def test_kms_encrypted_object_is_not_checked_against_its_etag(s3: Any, stub: Stubber) -> None:
    # With SSE-KMS the ETag is not the MD5 of the bytes, so a mismatch is no corruption.
    record = removed("kms.bin")
    stub_backup_get(stub, record.key, etag='"0123456789abcdef0123456789abcdef"', ServerSideEncryption="aws:kms")
    stub.add_response("put_object", {}, put_params(record.key, DATA))

    assert heal(record, s3, CONFIG).outcome == "healed"
    stub.assert_no_pending_responses()
