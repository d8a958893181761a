"""Measurement control: when each fault hit each key, and when the key came back.

Actions return ``{"faulted": {key: sent_at}}`` (and ``{"reuploaded": {key: etag}}`` for legitimate
re-uploads); after every activity this control hands those to the run's ledger, whose watcher
polls production until each key is back and byte-identical. The summary lands in the journal
under ``measurements``.
"""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.exceptions import InterruptExecution

from .. import ledger, settings

__all__ = [
    "after_activity_control",
    "after_experiment_control",
    "before_experiment_control",
    "before_method_control",
    "before_rollback_control",
    "cleanup_control",
]

logger = logging.getLogger("chaostoolkit")


def before_experiment_control(
    context: dict[str, Any],
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    try:
        ledger.begin(settings.load(configuration))
    except Exception as exc:
        logger.error(f"measurement control cannot start: {exc}")
        raise InterruptExecution(f"measurement control: {exc}") from exc


def before_method_control(context: dict[str, Any], **kwargs: Any) -> None:
    """From here on the steady state is judged after faults: a run without faults proves nothing."""
    current = ledger.current()
    if current is not None:
        current.method_started = True


def before_rollback_control(context: dict[str, Any], **kwargs: Any) -> None:
    """Rollbacks repair things: freeze the measurement first so they cannot flatter it."""
    current = ledger.current()
    if current is not None:
        current.freeze()


def after_activity_control(
    context: dict[str, Any],
    state: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    current = ledger.current()
    output = state.get("output") if isinstance(state, dict) else None
    if current is None or current.frozen or not isinstance(output, dict):
        return  # after the freeze, activities are rollbacks: they do not change the measurement
    if isinstance(output.get("reuploaded"), dict):
        current.record_reupload(output["reuploaded"])
    if isinstance(output.get("faulted"), dict):
        current.record_fault(str(context.get("name", "?")), output["faulted"])
    if isinstance(output.get("resumed_at"), float | int):
        current.record_resume(float(output["resumed_at"]))


def after_experiment_control(
    context: dict[str, Any],
    state: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    current = ledger.current()
    if current is not None and isinstance(state, dict):
        current.freeze()  # a no-op when the rollbacks already froze it
        state["measurements"] = current.summary()


def cleanup_control() -> None:
    ledger.end()
