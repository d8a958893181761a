"""Lambda entry point: a thin adapter from the event to ``restore.heal``."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .audit import audit
from .config import HealerConfig, load_config
from .events import ObjectRemoved, Rejected, Skipped, parse_event
from .exceptions import HealingFailed, RestoreError
from .restore import heal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@lru_cache(maxsize=1)
def _config() -> HealerConfig:
    return load_config(os.environ)


@lru_cache(maxsize=1)
def _s3() -> S3Client:
    # Created on first use, not at import: the module must import without AWS settings.
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def lambda_handler(event: Any, context: Any) -> dict[str, int]:
    """Heal every removed object named in the event; raise HealingFailed if any record failed."""
    config = _config()
    s3 = _s3()
    request_id = getattr(context, "aws_request_id", None)
    counts = {"healed": 0, "kept": 0, "ignored": 0, "skipped": 0, "failed": 0}
    failures: list[str] = []
    for record in parse_event(event):
        if isinstance(record, Skipped):
            audit(key=None, action="none", outcome="skipped", detail=record.reason, request_id=request_id)
            counts["skipped"] += 1
        elif isinstance(record, Rejected):
            audit(
                key=None,
                action="none",
                outcome="rejected",
                detail=f"{record.reason}: {record.raw}",
                request_id=request_id,
            )
            counts["failed"] += 1
            failures.append(f"rejected record: {record.reason}")
        else:
            _heal_one(record, s3, config, request_id, counts, failures)
    if failures:
        raise HealingFailed(failures)
    return counts


def _heal_one(
    record: ObjectRemoved,
    s3: S3Client,
    config: HealerConfig,
    request_id: str | None,
    counts: dict[str, int],
    failures: list[str],
) -> None:
    common = {
        "key": record.key,
        "event_name": record.event_name,
        "event_time": record.event_time,
        "request_id": request_id,
    }
    try:
        outcome = heal(record, s3, config)
    except RestoreError as exc:
        audit(action="restore", outcome="failed", detail=f"{type(exc).__name__}: {exc}", **common)  # type: ignore[arg-type]
        counts["failed"] += 1
        failures.append(f"{record.key!r}: {type(exc).__name__}: {exc}")
        return
    except Exception as exc:  # noqa: BLE001 - any AWS error: record it, keep going, fail the invocation
        audit(action="restore", outcome="error", detail=f"{type(exc).__name__}: {exc}", **common)  # type: ignore[arg-type]
        counts["failed"] += 1
        failures.append(f"{record.key!r}: {type(exc).__name__}: {exc}")
        return
    audit(action=outcome.action, outcome=outcome.outcome, detail=outcome.detail, **common)  # type: ignore[arg-type]
    counts[{"healed": "healed", "ignored": "ignored"}.get(outcome.outcome, "kept")] += 1
