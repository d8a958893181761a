"""Chaos Toolkit probes: the steady state and the measurements."""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.exceptions import ActivityFailed
from tenacity import Retrying, retry_if_result, stop_after_delay

from provisioning.observe import audit_lines, list_etags, queue_depth

from . import ledger, settings

__all__ = [
    "all_objects_intact",
    "backup_object_count",
    "dead_letter_queue_depth",
    "healer_error_count",
    "missing_objects_count",
    "time_to_heal_stats",
]

logger = logging.getLogger("chaostoolkit")


def _differences(config: settings.ExperimentConfig) -> tuple[list[str], list[str]]:
    """(missing, different) production keys against the healthy state.

    The healthy state is the backup, except for keys the run legitimately re-uploaded.
    """
    s3 = config.target.s3()
    healthy = list_etags(s3, config.backup_bucket)
    current_ledger = ledger.current()
    if current_ledger is not None:
        healthy.update({k: v for k, v in current_ledger.watcher.expected_etag.items() if k in healthy})
    production = list_etags(s3, config.production_bucket)
    missing = sorted(key for key in healthy if key not in production)
    different = sorted(key for key, etag in healthy.items() if key in production and production[key] != etag)
    return missing, different


def all_objects_intact(
    timeout_s: float = 0.0,
    poll_s: float = 0.5,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> bool:
    """Every backed-up object is in production with the same checksum (ETag) as its backup copy.

    Polls up to ``timeout_s`` for the state to come back; logs what is missing or different.
    """
    config = settings.load(configuration)
    state: dict[str, list[str]] = {"missing": [], "different": []}

    def intact() -> bool:
        state["missing"], state["different"] = _differences(config)
        return not state["missing"] and not state["different"]

    ok = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=lambda _: poll_s,
        retry=retry_if_result(lambda ok: not ok),
        retry_error_callback=lambda _: False,
    )(intact)
    if not ok:
        logger.warning(
            f"steady state broken: {len(state['missing'])} missing (first: {state['missing'][:5]}), "
            f"{len(state['different'])} different (first: {state['different'][:5]})"
        )
    return bool(ok)


def missing_objects_count(configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None) -> int:
    """How many backed-up objects are absent from production right now."""
    return len(_differences(settings.load(configuration))[0])


def time_to_heal_stats(
    timeout_s: float = 120.0, configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None
) -> dict[str, Any]:
    """p50/p95/p99/max time-to-heal and healed/lost/corrupted counts for every fault of this run.

    Waits up to ``timeout_s`` for keys still pending. Needs the measurement control.
    """
    current_ledger = ledger.current()
    if current_ledger is None:
        raise ActivityFailed("time_to_heal_stats needs the measurement control (experiments.controls.measurement)")
    if not current_ledger.method_started:
        # The steady state before any fault: nothing to heal.
        return {"after_method": False, "faulted": 0, "healed": 0, "lost": 0, "corrupted": 0}
    report = current_ledger.report(timeout_s)
    summary: dict[str, Any] = report.summary()
    summary["after_method"] = True
    summary["faulted"] = summary["healed"] + summary["lost"] + summary["corrupted"]
    summary["lost_keys"] = list(report.lost[:20])
    summary["recovery_after_resume_s"] = current_ledger.recovery_after_resume_s()
    return summary


def dead_letter_queue_depth(configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None) -> int:
    """Records in the dead-letter queue (visible and in flight)."""
    config = settings.load(configuration)
    return queue_depth(config.target.sqs(), config.dead_letter_queue_url)


def healer_error_count(configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None) -> int:
    """Audit lines in the healer's log group whose outcome is failed, error or rejected."""
    config = settings.load(configuration)
    lines = audit_lines(config.target.logs(), config.log_group)
    return sum(1 for line in lines if line.get("outcome") in {"failed", "error", "rejected"})


def backup_object_count(configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None) -> int:
    """Keys in the backup bucket (its latest versions); faults must never lower it."""
    config = settings.load(configuration)
    return len(list_etags(config.target.s3(), config.backup_bucket))
