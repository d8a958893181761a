"""Chaos Toolkit actions: the faults. Each returns what its rollback (or the report) needs.

Every action checks the blast-radius cap (``max_keys_per_action``) and refuses a target that
is not loopback unless the configuration opts in and names the buckets.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from datetime import datetime
from typing import Any, Final

from chaoslib.exceptions import ActivityFailed
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from healer.config import HealerConfig
from healer.deadletter import s3_removed_message
from healer.sweep import sweep
from provisioning.exceptions import ConfigError
from provisioning.faults.proxy import FaultProxyClient
from provisioning.faults.rules import FaultRule
from provisioning.observe import delete_keys, list_etags
from provisioning.reconcile import redrive
from provisioning.target import is_loopback_url

from . import settings
from .selection import select_keys

__all__ = [
    "batch_delete",
    "clear_api_faults",
    "delete_objects",
    "inject_api_fault",
    "make_backup_readable",
    "make_backup_unreadable",
    "overwrite_with_garbage",
    "pause_healer",
    "redrive_dead_letters",
    "repeat_delete",
    "replay_events",
    "restore_from_backup",
    "restore_missing_from_backup",
    "resume_healer",
    "reupload_newer",
    "run_sweep",
    "wait_for_dead_letters",
    "wipe_prefix",
]

ARCHIVE_CLASS: Final = "GLACIER"


def delete_objects(
    count: int | None = None,
    fraction: float | None = None,
    prefix: str = "",
    seed: int = 0,
    concurrency: int = 8,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Delete ``count`` or ``fraction`` of the production objects under ``prefix``.

    One DeleteObject a key, ``concurrency`` requests at once: many clients deleting together.
    """
    return _delete(configuration, "delete_objects", count, fraction, prefix, seed, batch=False, concurrency=concurrency)


def batch_delete(
    count: int | None = None,
    fraction: float | None = None,
    prefix: str = "",
    seed: int = 0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Delete through DeleteObjects, 1,000 keys a call."""
    return _delete(configuration, "batch_delete", count, fraction, prefix, seed, batch=True)


def _delete(
    configuration: dict[str, Any] | None,
    action: str,
    count: int | None,
    fraction: float | None,
    prefix: str,
    seed: int,
    *,
    batch: bool,
    concurrency: int = 1,
) -> dict[str, Any]:
    config = settings.load(configuration)
    config.ensure_safe()
    keys = select_keys(config, count=count, fraction=fraction, prefix=prefix, seed=seed, action=action)
    sent_at = delete_keys(config.target.s3(), config.production_bucket, keys, batch=batch, concurrency=concurrency)
    return {"faulted": sent_at, "deleted": len(keys)}


def wipe_prefix(
    prefix: str, configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Delete every object under ``prefix`` (in DeleteObjects batches)."""
    if not prefix:
        raise ConfigError("wipe_prefix needs a non-empty prefix; use batch_delete(fraction=1) to wipe all")
    config = settings.load(configuration)
    config.ensure_safe()
    keys = select_keys(config, prefix=prefix, action="wipe_prefix")
    sent_at = delete_keys(config.target.s3(), config.production_bucket, keys, batch=True)
    return {"faulted": sent_at, "deleted": len(keys), "prefix": prefix}


def repeat_delete(
    count: int = 10,
    times: int = 3,
    seed: int = 0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Delete the same ``count`` keys ``times`` times in a row (later deletes may hit a healed copy)."""
    config = settings.load(configuration)
    config.ensure_safe()
    keys = select_keys(config, count=count, seed=seed, action="repeat_delete")
    s3 = config.target.s3()
    sent_at: dict[str, float] = {}
    for _ in range(times):
        for key, when in delete_keys(s3, config.production_bucket, keys, batch=False).items():
            sent_at.setdefault(key, when)
    return {"faulted": sent_at, "deleted": len(keys), "times": times}


def overwrite_with_garbage(
    count: int = 10,
    seed: int = 0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Overwrite objects with random bytes: corruption, which no delete event announces.

    The healer only acts on deletes, so this is a fault it is expected *not* to catch; roll back
    with ``restore_from_backup`` (same count and seed).
    """
    config = settings.load(configuration)
    config.ensure_safe()
    keys = select_keys(config, count=count, seed=seed, action="overwrite_with_garbage")
    s3 = config.target.s3()
    for key in keys:
        s3.put_object(Bucket=config.production_bucket, Key=key, Body=os.urandom(64))
    return {"overwritten": keys}


def restore_missing_from_backup(
    configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Safety-net rollback: copy back from the backup every key production is missing.

    Rollbacks run after the steady state was judged, so this never hides a finding; it only
    leaves a shared environment whole.
    """
    config = settings.load(configuration)
    config.ensure_safe()
    s3 = config.target.s3()
    missing = sorted(set(list_etags(s3, config.backup_bucket)) - set(list_etags(s3, config.production_bucket)))
    return {"restored": _copy_back(config, missing)}


def restore_from_backup(
    count: int = 10,
    seed: int = 0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rollback of ``overwrite_with_garbage``: copy the same keys back from the backup."""
    config = settings.load(configuration)
    config.ensure_safe()
    keys = select_keys(config, count=count, seed=seed, action="restore_from_backup")
    return {"restored": _copy_back(config, keys)}


def _copy_back(config: settings.ExperimentConfig, keys: list[str]) -> list[str]:
    """Copy keys from the backup over production (rollbacks: they may overwrite)."""
    s3 = config.target.s3()
    for key in keys:
        s3.copy_object(
            Bucket=config.production_bucket, Key=key, CopySource={"Bucket": config.backup_bucket, "Key": key}
        )
    return keys


def reupload_newer(
    count: int = 10,
    seed: int = 0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Delete keys and upload newer content at once: a user's legitimate re-upload.

    The healer must leave the newer objects alone. Returns the new ETags; the measurement
    control records them as the healthy state of those keys.
    """
    config = settings.load(configuration)
    config.ensure_safe()
    # Chosen among the backup's keys, which stay put while production is healing, so that
    # replay_events with the same count and seed picks the same keys.
    keys = select_keys(config, count=count, seed=seed, bucket=config.backup_bucket, action="reupload_newer")
    s3 = config.target.s3()
    newer: dict[str, str] = {}
    for key in keys:
        body = f"newer upload of {key} at {time.time()}".encode()
        s3.delete_object(Bucket=config.production_bucket, Key=key)
        s3.put_object(Bucket=config.production_bucket, Key=key, Body=body)
        newer[key] = hashlib.md5(body, usedforsecurity=False).hexdigest()
    return {"reuploaded": newer}


def pause_healer(configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None) -> dict[str, Any]:
    """Reserved concurrency 0: Lambda (and the local runtime) hold events instead of running them."""
    config = settings.load(configuration)
    config.ensure_safe()
    lam = config.target.lambda_()
    previous = lam.get_function_concurrency(FunctionName=config.function_name).get("ReservedConcurrentExecutions")
    lam.put_function_concurrency(FunctionName=config.function_name, ReservedConcurrentExecutions=0)
    return {"function_name": config.function_name, "previous_reserved_concurrency": previous}


def resume_healer(
    previous_reserved_concurrency: int | None = None,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Undo ``pause_healer``: restore the previous reserved concurrency (none by default)."""
    config = settings.load(configuration)
    lam = config.target.lambda_()
    if previous_reserved_concurrency is None:
        lam.delete_function_concurrency(FunctionName=config.function_name)
    else:
        lam.put_function_concurrency(
            FunctionName=config.function_name, ReservedConcurrentExecutions=previous_reserved_concurrency
        )
    return {
        "function_name": config.function_name,
        "reserved_concurrency": previous_reserved_concurrency,
        "resumed_at": time.time(),
    }


def replay_events(
    count: int = 10,
    copies: int = 3,
    shuffle: bool = True,
    seed: int = 0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish ``copies`` duplicate ObjectRemoved events for ``count`` keys to the topic, reordered.

    The objects exist, so a correct healer leaves every one of them alone (no clobber).
    """
    config = settings.load(configuration)
    config.ensure_safe()
    keys = select_keys(config, count=count, seed=seed, bucket=config.backup_bucket, action="replay_events")
    events = [s3_removed_message(config.production_bucket, key) for key in keys for _ in range(copies)]
    if shuffle:
        random.Random(seed).shuffle(events)
    sns = config.target.sns()
    for event in events:
        sns.publish(TopicArn=config.topic_arn, Message=json.dumps(event))
    return {"replayed": len(events), "keys": keys}


def make_backup_unreadable(
    count: int | None = None,
    prefix: str = "",
    seed: int = 0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make backup copies unreadable by archiving them (storage class GLACIER) in place.

    Nothing is deleted: the backup is versioned, so archiving adds a version and the readable
    one stays underneath. S3 (and moto) refuse to copy an archived object that was not restored,
    which is exactly the failure the healer must survive. Roll back with ``make_backup_readable``.
    """
    config = settings.load(configuration)
    config.ensure_safe()
    keys = select_keys(
        config, count=count, prefix=prefix, seed=seed, bucket=config.backup_bucket, action="make_backup_unreadable"
    )
    s3 = config.target.s3()
    for key in keys:
        s3.copy_object(
            Bucket=config.backup_bucket,
            Key=key,
            CopySource={"Bucket": config.backup_bucket, "Key": key},
            StorageClass=ARCHIVE_CLASS,
            MetadataDirective="COPY",
        )
    return {"archived": keys}


def make_backup_readable(
    count: int | None = None,
    prefix: str = "",
    seed: int = 0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Rollback of ``make_backup_unreadable``: the newest readable version becomes the latest again."""
    config = settings.load(configuration)
    config.ensure_safe()
    s3 = config.target.s3()
    keys = select_keys(
        config, count=count, prefix=prefix, seed=seed, bucket=config.backup_bucket, action="make_backup_readable"
    )
    wanted = set(keys)
    latest_readable: dict[str, tuple[datetime, str]] = {}
    archived: set[str] = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=config.backup_bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            key = version["Key"]
            if key not in wanted:
                continue
            # The stubs type this as STANDARD only; S3 reports the version's real class.
            storage_class = str(version.get("StorageClass", "STANDARD"))
            if version.get("IsLatest") and storage_class == ARCHIVE_CLASS:
                archived.add(key)
            if storage_class != ARCHIVE_CLASS:
                best = latest_readable.get(key)
                if best is None or version["LastModified"] > best[0]:
                    latest_readable[key] = (version["LastModified"], version["VersionId"])
    for key in sorted(archived):
        _, version_id = latest_readable[key]
        s3.copy_object(
            Bucket=config.backup_bucket,
            Key=key,
            CopySource={"Bucket": config.backup_bucket, "Key": key, "VersionId": version_id},
            MetadataDirective="COPY",
        )
    return {"made_readable": sorted(archived)}


def wait_for_dead_letters(
    min_count: int | None = None,
    prefix: str | None = None,
    timeout_s: float = 60.0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wait (polling, with a deadline) until the dead-letter queue holds ``min_count`` records.

    With ``prefix`` instead, wait for one record per backup key under it.
    """
    config = settings.load(configuration)
    sqs = config.target.sqs()
    if min_count is None:
        if prefix is None:
            raise ConfigError("wait_for_dead_letters needs min_count or prefix")
        min_count = len(select_keys(config, prefix=prefix, bucket=config.backup_bucket, action="wait_for_dead_letters"))
    expected = min_count

    def depth() -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=config.dead_letter_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0))

    found = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(0.25),
        retry=retry_if_result(lambda n: n < expected),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else 0,
    )(depth)
    if found < expected:
        raise ActivityFailed(f"dead-letter queue held {found} record(s) after {timeout_s:g}s, expected {expected}")
    return {"dead_letters": found}


def redrive_dead_letters(
    configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Re-publish every dead-lettered S3 event to the topic, then remove it from the queue."""
    config = settings.load(configuration)
    config.ensure_safe()
    return redrive(config.target, config.dead_letter_queue_url, config.topic_arn)


def run_sweep(
    max_restores_per_s: float = 50.0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the reconciliation sweep now: restore every key the backup has and production lacks."""
    config = settings.load(configuration)
    config.ensure_safe()
    healer_config = HealerConfig(config.production_bucket, config.backup_bucket, config.dead_letter_queue_url)
    started = time.time()
    result = sweep(config.target.s3(), healer_config, max_restores_per_s=max_restores_per_s, sqs=config.target.sqs())
    # The keys it healed were faulted before it ran: measured from their faults, not from now.
    return {**result.as_dict(), "started_at": started}


def inject_api_fault(
    fault: str,
    service: str | None = None,
    operation: str | None = None,
    bucket: str | None = None,
    probability: float = 1.0,
    latency_s: float = 0.0,
    duration_s: float | None = None,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Add a rule to the fault proxy the healer talks through (configuration ``fault_proxy_url``).

    ``fault`` is latency, slowdown, throttling, internal-error, access-denied or drop; the rule
    expires after ``duration_s`` when given. Roll back with ``clear_api_faults``.
    """
    proxy = _fault_proxy(configuration)
    until = time.time() + duration_s if duration_s is not None else None
    rule = FaultRule(
        fault,
        service=service,
        operation=operation,
        bucket=bucket,
        probability=probability,
        latency_s=latency_s,
        until=until,
    )
    return {"rule_id": proxy.add_rule(rule), "until": until}


def clear_api_faults(
    configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Remove every rule from the fault proxy."""
    return {"cleared": _fault_proxy(configuration).clear_rules()}


def _fault_proxy(configuration: dict[str, Any] | None) -> FaultProxyClient:
    url = (configuration or {}).get("fault_proxy_url")
    if not url:
        raise ConfigError("no fault proxy: set configuration fault_proxy_url (the proxy the healer talks through)")
    if not is_loopback_url(str(url)):
        raise ConfigError(f"fault_proxy_url {url!r} is not a loopback address")
    return FaultProxyClient(str(url))
