"""The reconciliation sweep: heal every key the backup has and production lacks.

Events can be late, duplicated, collapsed or lost; the sweep does not depend on them. It walks
both buckets' listings side by side, a page at a time (both are sorted by key, so a merge needs
no full listing in memory), restores what is missing with the healer's own no-clobber restore,
writes the same audit lines, and dead-letters what it cannot fix. ``lambda_handler`` runs it as
the stack's scheduled function.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .audit import audit
from .config import HealerConfig, load_config
from .deadletter import dead_letter, s3_event_for
from .events import ObjectRemoved
from .restore import heal
from .retry import transient_retrying

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

RATE_VAR = "SWEEP_MAX_RESTORES_PER_S"
DEFAULT_MAX_RESTORES_PER_S = 50.0
SWEEP_EVENT = "Sweep:MissingFromProduction"


@dataclass
class SweepResult:
    scanned: int = 0
    missing: int = 0
    healed: int = 0
    kept: int = 0
    failed: int = 0
    dead_lettered: int = 0
    healed_keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if key != "healed_keys"}


def _keys(s3: S3Client, bucket: str, page_size: int) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": page_size}):
        for item in page.get("Contents", []):
            yield item["Key"]


def missing_keys(
    s3: S3Client, config: HealerConfig, page_size: int = 1000, result: SweepResult | None = None
) -> Iterator[str]:
    """Keys in the backup and not in production, by a merge of the two sorted listings.

    ``result.scanned`` (when given) counts the backup keys looked at.
    """
    production = _keys(s3, config.production_bucket, page_size)
    current = next(production, None)
    for key in _keys(s3, config.backup_bucket, page_size):
        if result is not None:
            result.scanned += 1
        # S3 lists in UTF-8 byte order, which is the order of the encoded keys.
        while current is not None and current.encode() < key.encode():
            current = next(production, None)
        if current != key:
            yield key


def sweep(
    s3: S3Client,
    config: HealerConfig,
    *,
    max_restores_per_s: float = DEFAULT_MAX_RESTORES_PER_S,
    sqs: SQSClient | None = None,
    request_id: str | None = None,
    page_size: int = 1000,
) -> SweepResult:
    """Restore every missing key (at most ``max_restores_per_s``); dead-letter the failures."""
    result = SweepResult()
    interval = 1.0 / max_restores_per_s if max_restores_per_s > 0 else 0.0
    next_slot = time.monotonic()
    for key in missing_keys(s3, config, page_size, result):
        result.missing += 1
        # Rate limit: a token every `interval` seconds, so a sweep never floods the buckets.
        delay = next_slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        next_slot = max(next_slot, time.monotonic()) + interval
        record = ObjectRemoved(
            event_name=SWEEP_EVENT, event_time=datetime.now(UTC), bucket=config.production_bucket, key=key
        )
        try:
            for attempt in transient_retrying():
                with attempt:
                    outcome = heal(record, s3, config)
        except Exception as exc:  # noqa: BLE001 - one key's failure must not stop the sweep
            result.failed += 1
            audit(
                key=key,
                action="restore",
                outcome="failed",
                detail=f"sweep: {type(exc).__name__}: {exc}",
                event_name=SWEEP_EVENT,
                request_id=request_id,
            )
            if sqs is not None and config.dead_letter_queue_url:
                dead_letter(
                    sqs,
                    config.dead_letter_queue_url,
                    s3_event_for(config.production_bucket, key),
                    type(exc).__name__,
                    str(exc),
                    request_id,
                )
                result.dead_lettered += 1
            continue
        audit(
            key=key,
            action=outcome.action,
            outcome=outcome.outcome,
            detail=f"sweep: {outcome.detail}",
            event_name=SWEEP_EVENT,
            request_id=request_id,
        )
        if outcome.outcome == "healed":
            result.healed += 1
            result.healed_keys.append(key)
        else:
            result.kept += 1
    return result


@lru_cache(maxsize=1)
def _clients() -> tuple[S3Client, SQSClient]:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard", "total_max_attempts": 1})), boto3.client("sqs")


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """The scheduled sweep function: sweep once and report what it did."""
    config = load_config(os.environ)
    rate = float(os.environ.get(RATE_VAR, DEFAULT_MAX_RESTORES_PER_S))
    s3, sqs = _clients()
    started = time.monotonic()
    result = sweep(s3, config, max_restores_per_s=rate, sqs=sqs, request_id=getattr(context, "aws_request_id", None))
    summary = {**result.as_dict(), "seconds": round(time.monotonic() - started, 3)}
    audit(key=None, action="sweep", outcome="completed", detail=str(summary), event_name="Sweep")
    return summary
