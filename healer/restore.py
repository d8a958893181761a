"""Restore one removed object from the backup bucket, never clobbering a newer one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .config import HealerConfig
from .events import ObjectRemoved
from .exceptions import BackupObjectMissing

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

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
    """Restore ``record.key`` into production from backup, if it is still missing.

    Two requests on the common path (HEAD production, CopyObject): the backup is not
    HEADed first because CopyObject itself answers NoSuchKey when the backup has no copy.
    Raises BackupObjectMissing when there is nothing to restore from; other AWS errors
    propagate so the invocation is retried.
    """
    if record.bucket != config.production_bucket:
        return Outcome("none", "ignored", f"event is for bucket {record.bucket!r}, not the production bucket")
    if _exists(s3, config.production_bucket, record.key):
        # Re-uploaded (or already healed) since the delete: the newer object wins.
        return Outcome("none", "kept-existing", "object exists in production again; left untouched")
    copy_source = {"Bucket": config.backup_bucket, "Key": record.key}
    try:
        s3.copy_object(
            Bucket=config.production_bucket,
            Key=record.key,
            CopySource=copy_source,  # type: ignore[arg-type]
            MetadataDirective="COPY",
            # Enforced by S3 (not by every emulator): fail rather than overwrite a re-upload
            # that lands between the HEAD above and this copy.
            IfNoneMatch="*",
        )
    except ClientError as exc:
        code = _code(exc)
        if code in _NOT_FOUND:
            raise BackupObjectMissing(
                record.key, f"key {record.key!r} is not in backup bucket {config.backup_bucket!r}"
            ) from exc
        if code in _PRECONDITION_FAILED:
            return Outcome("none", "kept-existing", "object re-uploaded while restoring; left untouched")
        if code == "InvalidRequest" and "larger than the maximum" in str(exc):
            return _multipart_copy(s3, config, record.key, copy_source)
        raise
    return Outcome("restored", "healed", "copied from backup")


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
