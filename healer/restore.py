"""Restore one removed object from the backup bucket, never clobbering a newer one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from .config import HealerConfig
from .events import ObjectRemoved
from .exceptions import BackupObjectMissing, IntegrityError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Objects up to this size pass through the function (read, then a conditional PutObject).
INLINE_RESTORE_LIMIT = 16 * 1024 * 1024
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION_FAILED = {"PreconditionFailed", "412"}
_COPIED_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "Expires")


@dataclass(frozen=True)
class Outcome:
    """What the healer did with one record. ``action`` is what was done, ``outcome`` the result."""

    action: str
    outcome: str
    detail: str = ""


def heal(record: ObjectRemoved, s3: S3Client, config: HealerConfig) -> Outcome:
    """Restore ``record.key`` into production from backup, unless production has it again.

    Objects up to INLINE_RESTORE_LIMIT are read from the backup and written with
    ``PutObject(IfNoneMatch='*')``: a conditional write that S3 and the emulators enforce, so a
    re-upload can never be clobbered, and that needs no HEAD first. Larger objects are copied
    server-side (see ``_copy_restore``). Raises BackupObjectMissing when there is nothing to
    restore from and IntegrityError when the bytes read do not match the backup's checksum;
    other AWS errors propagate so the invocation is retried.
    """
    if record.bucket != config.production_bucket:
        return Outcome("none", "ignored", f"event is for bucket {record.bucket!r}, not the production bucket")
    if record.event_name == "ObjectRemoved:DeleteMarkerCreated" and record.version_id:
        removed = _remove_delete_marker(s3, config.production_bucket, record.key, record.version_id)
        if removed is not None:
            return removed
    try:
        source = s3.get_object(Bucket=config.backup_bucket, Key=record.key)
    except ClientError as exc:
        if _code(exc) in _NOT_FOUND:
            raise BackupObjectMissing(
                record.key, f"key {record.key!r} is not in backup bucket {config.backup_bucket!r}"
            ) from exc
        raise
    size = int(source.get("ContentLength", 0))
    if size > INLINE_RESTORE_LIMIT:
        source["Body"].close()
        return _copy_restore(s3, config, record.key)
    body = source["Body"].read()
    if source.get("ServerSideEncryption") != "aws:kms" and not source.get("SSECustomerAlgorithm"):
        _check_integrity(record.key, body, source.get("ETag"))  # with KMS or SSE-C the ETag is no MD5
    headers: dict[str, Any] = {header: source[header] for header in _COPIED_HEADERS if source.get(header)}  # type: ignore[literal-required]
    if source.get("TagCount"):
        # PutObject, unlike CopyObject, does not carry tags across: read and pass them.
        tags = s3.get_object_tagging(Bucket=config.backup_bucket, Key=record.key)["TagSet"]
        headers["Tagging"] = urlencode([(tag["Key"], tag["Value"]) for tag in tags])
    try:
        s3.put_object(
            Bucket=config.production_bucket,
            Key=record.key,
            Body=body,
            Metadata=source.get("Metadata", {}),
            IfNoneMatch="*",
            **headers,
        )
    except ClientError as exc:
        if _code(exc) in _PRECONDITION_FAILED:
            # Re-uploaded (or already healed) since the delete: the newer object wins.
            return Outcome("none", "kept-existing", "object exists in production again; left untouched")
        raise
    return Outcome("restored", "healed", f"restored {size} bytes from backup")


def _remove_delete_marker(s3: S3Client, bucket: str, key: str, marker_version: str) -> Outcome | None:
    """On a versioned bucket, undo the delete by removing its marker: the previous version returns.

    Only the event's own marker, and only while it is the latest version with a real version
    under it; otherwise None, and the caller restores from the backup instead.
    """
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key, MaxKeys=50)
    versions = [v for v in listing.get("Versions", []) if v["Key"] == key]
    markers = [m for m in listing.get("DeleteMarkers", []) if m["Key"] == key]
    if any(v.get("IsLatest") for v in versions):
        return Outcome("none", "kept-existing", "a newer version exists in production; left untouched")
    latest_marker = next((m for m in markers if m.get("IsLatest")), None)
    if latest_marker is None or latest_marker.get("VersionId") != marker_version or not versions:
        return None
    s3.delete_object(Bucket=bucket, Key=key, VersionId=marker_version)
    return Outcome("removed-delete-marker", "healed", f"removed delete marker {marker_version}")


def _copy_restore(s3: S3Client, config: HealerConfig, key: str) -> Outcome:
    """Server-side copy for objects too large to pass through the function.

    CopyObject takes ``IfNoneMatch='*'`` too, but not every emulator enforces it (moto does
    not), so production is HEADed first; the gap between HEAD and copy is protected on AWS only.
    """
    if _exists(s3, config.production_bucket, key):
        return Outcome("none", "kept-existing", "object exists in production again; left untouched")
    copy_source = {"Bucket": config.backup_bucket, "Key": key}
    try:
        s3.copy_object(
            Bucket=config.production_bucket,
            Key=key,
            CopySource=copy_source,  # type: ignore[arg-type]
            MetadataDirective="COPY",
            IfNoneMatch="*",
        )
    except ClientError as exc:
        code = _code(exc)
        if code in _NOT_FOUND:
            raise BackupObjectMissing(key, f"key {key!r} is not in backup bucket {config.backup_bucket!r}") from exc
        if code in _PRECONDITION_FAILED:
            return Outcome("none", "kept-existing", "object re-uploaded while restoring; left untouched")
        if code == "InvalidRequest" and "larger than the maximum" in str(exc):
            return _multipart_copy(s3, config, key, copy_source)
        raise
    return Outcome("restored", "healed", "copied from backup server-side")


def _check_integrity(key: str, body: bytes, etag: str | None) -> None:
    # A single-part ETag is the MD5 of the bytes (multipart ETags contain a "-").
    expected = (etag or "").strip('"')
    if expected and "-" not in expected and hashlib.md5(body, usedforsecurity=False).hexdigest() != expected:
        raise IntegrityError(key, f"bytes read for {key!r} do not match the backup's ETag {expected}")


def _multipart_copy(s3: S3Client, config: HealerConfig, key: str, copy_source: dict[str, str]) -> Outcome:
    """Over 5 GiB: boto3's managed copy, in UploadPartCopy requests.

    It takes no IfNoneMatch, so production is checked again right before it starts; a
    re-upload during a copy of several minutes can still be overwritten (noted in the README).
    It does not carry headers across on its own, so they are passed explicitly.
    """
    try:
        source = s3.head_object(Bucket=config.backup_bucket, Key=key)
    except ClientError as exc:
        if _code(exc) in _NOT_FOUND:
            raise BackupObjectMissing(key, f"key {key!r} is not in backup bucket {config.backup_bucket!r}") from exc
        raise
    extra: dict[str, Any] = {"Metadata": source.get("Metadata", {})}
    for header in _COPIED_HEADERS:
        if source.get(header):
            extra[header] = source[header]  # type: ignore[literal-required]
    if _exists(s3, config.production_bucket, key):
        return Outcome("none", "kept-existing", "object re-uploaded while restoring; left untouched")
    s3.copy(copy_source, config.production_bucket, key, ExtraArgs=extra)  # type: ignore[arg-type]
    return Outcome("restored", "healed", f"multipart copy of {source.get('ContentLength', 0)} bytes from backup")


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _code(exc) in _NOT_FOUND:
            return False
        raise
    return True


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
