"""Lambda entry point: a thin adapter from the event to ``restore.heal``."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .audit import audit
from .config import HealerConfig, load_config
from .deadletter import dead_letter
from .events import ObjectRemoved, Rejected, Skipped, parse_event
from .exceptions import HealingFailed, RestoreError
from .restore import Outcome, heal
from .retry import transient_retrying

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


@lru_cache(maxsize=1)
def _config() -> HealerConfig:
    return load_config(os.environ)


@lru_cache(maxsize=1)
def _s3() -> S3Client:
    # Created on first use, not at import: the module must import without AWS settings.
    import boto3
    from botocore.config import Config

    # No botocore retries: transient errors are retried by retry.py, with a bound and jitter.
    return boto3.client("s3", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


@lru_cache(maxsize=1)
def _sqs() -> SQSClient:
    import boto3

    return boto3.client("sqs")


def lambda_handler(event: Any, context: Any) -> dict[str, int]:
    """Heal every removed object named in the event; raise HealingFailed if any record failed.

    Records that cannot be parsed go straight to the dead-letter queue (retrying cannot fix
    them); records that fail to heal make the invocation fail, so Lambda retries it and then
    sends it to its on-failure destination. Siblings of a bad record are always processed.
    """
    config = _config()
    request_id = getattr(context, "aws_request_id", None)
    counts = {"healed": 0, "kept": 0, "ignored": 0, "skipped": 0, "rejected": 0, "failed": 0}
    failures: list[str] = []
    for record in parse_event(event):
        if isinstance(record, Skipped):
            audit(key=None, action="none", outcome="skipped", detail=record.reason, request_id=request_id)
            counts["skipped"] += 1
        elif isinstance(record, Rejected):
            _reject(record, config, request_id, counts, failures)
        else:
            _heal_one(record, config, request_id, counts, failures)
    if failures:
        raise HealingFailed(failures)
    return counts


def _reject(
    record: Rejected, config: HealerConfig, request_id: str | None, counts: dict[str, int], failures: list[str]
) -> None:
    where = "no dead-letter queue configured: failing the invocation"
    if config.dead_letter_queue_url:
        try:
            dead_letter(
                _sqs(), config.dead_letter_queue_url, {"rejected": record.raw}, "BadEvent", record.reason, request_id
            )
            where = "sent to the dead-letter queue"
        except Exception as exc:  # noqa: BLE001 - not lost: the invocation fails and Lambda keeps it
            where = f"dead-lettering failed ({type(exc).__name__}: {exc}): failing the invocation"
    audit(
        key=None,
        action="dead-letter",
        outcome="rejected",
        detail=f"{record.reason}; {where}: {_shorten(record.raw)}",
        request_id=request_id,
    )
    counts["rejected"] += 1
    if not where.startswith("sent"):
        failures.append(f"rejected record: {record.reason}")


def _heal_one(
    record: ObjectRemoved, config: HealerConfig, request_id: str | None, counts: dict[str, int], failures: list[str]
) -> None:
    try:
        outcome: Outcome | None = None
        for attempt in transient_retrying():
            with attempt:
                outcome = heal(record, _s3(), config)
        assert outcome is not None
    except Exception as exc:  # noqa: BLE001 - record it, keep going with the siblings, fail the invocation
        kind = "failed" if isinstance(exc, RestoreError) else "error"
        audit(
            key=record.key,
            action="restore",
            outcome=kind,
            detail=f"{type(exc).__name__}: {exc}",
            event_name=record.event_name,
            event_time=record.event_time,
            request_id=request_id,
        )
        counts["failed"] += 1
        failures.append(f"{record.key!r}: {type(exc).__name__}: {exc}")
        return
    audit(
        key=record.key,
        action=outcome.action,
        outcome=outcome.outcome,
        detail=outcome.detail,
        event_name=record.event_name,
        event_time=record.event_time,
        request_id=request_id,
    )
    counts[{"healed": "healed", "ignored": "ignored"}.get(outcome.outcome, "kept")] += 1


def _shorten(text: str, limit: int = 2048) -> str:
    """Audit lines stay readable; the dead-letter queue keeps the whole record."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
