"""Report control: after the run, write the journal and a self-contained HTML report.

Both land in ``reports/chaos/<time>-<title>/`` (the folder is configurable with the control's
``output_dir`` argument); secrets are masked in both, and in the journal Chaos Toolkit writes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from reports.chaos_report import write
from reports.redact import redact, secret_values

__all__ = ["after_experiment_control"]

logger = logging.getLogger("chaostoolkit")
SLO_KEYS = ("slo_p99_s", "slo_p50_s", "recovery_timeout_s")


def after_experiment_control(
    context: dict[str, Any],
    state: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    output_dir: str = "reports",
    **kwargs: Any,
) -> None:
    if not isinstance(state, dict):
        return
    try:
        masked = redact(state, secret_values(secrets))
        # The journal object is also what `chaos run` writes afterwards: mask it in place too.
        state.clear()
        state.update(masked)
        slo = {key: (configuration or {}).get(key) for key in SLO_KEYS}
        journal_path, report_path = write(state, slo, Path(output_dir))
        logger.info(f"report control: journal {journal_path}, HTML report {report_path}")
    except Exception as exc:  # noqa: BLE001 - a failed report must not hide the run's result
        logger.error(f"report control could not write the report: {exc}")
