"""What the measurement control knows during a run: faults, heals, and the healthy state.

One ledger per experiment run, held here so that the measurement control, the probes and the
report control (all called by Chaos Toolkit with nothing but the configuration) share it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from provisioning.observe import HealReport, HealWatcher, list_etags

from .settings import ExperimentConfig


@dataclass
class FaultEvent:
    activity: str
    started_at: float
    keys: int


@dataclass
class Ledger:
    """Faults and heals of one run, watched in a background thread."""

    config: ExperimentConfig
    watcher: HealWatcher
    faults: list[FaultEvent] = field(default_factory=list)
    method_started: bool = False
    frozen: bool = False
    resumed_at: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _report: HealReport | None = None

    @classmethod
    def start(cls, config: ExperimentConfig) -> Ledger:
        s3 = config.target.s3()
        # The healthy state is what the backup holds when the run starts.
        healthy = list_etags(s3, config.backup_bucket)
        ledger = cls(config=config, watcher=HealWatcher(s3, config.production_bucket, healthy))
        ledger._thread = threading.Thread(
            target=ledger.watcher.watch, args=(ledger._stop,), name="heal-watcher", daemon=True
        )
        ledger._thread.start()
        return ledger

    def record_fault(self, activity: str, sent_at: dict[str, float]) -> None:
        if not sent_at:
            return
        self.faults.append(FaultEvent(activity=activity, started_at=min(sent_at.values()), keys=len(sent_at)))
        self.watcher.add(sent_at)
        self._report = None

    def record_resume(self, when: float) -> None:
        self.resumed_at = when

    def recovery_after_resume_s(self) -> float | None:
        """Seconds from the healer's resume until the last key faulted before it was back."""
        if self.resumed_at is None or self._report is None:
            return None
        faulted_at = self.watcher.faulted_at()
        back = [faulted_at[key] + seconds for key, seconds in self._report.time_to_heal_s.items() if key in faulted_at]
        return max(0.0, max(back) - self.resumed_at) if back else None

    def record_reupload(self, etags: dict[str, str]) -> None:
        for key, etag in etags.items():
            self.watcher.expect(key, etag)

    def freeze(self) -> None:
        """Take the measurement as it stands; later repairs (rollbacks) must not improve it."""
        if self.faults and not self.frozen:
            self.report(timeout_s=0)
        self.frozen = True

    def report(self, timeout_s: float) -> HealReport:
        """Wait up to ``timeout_s`` for pending keys, then verify bytes against the backup."""
        if self.frozen and self._report is not None:
            return self._report
        if self._report is None or self.watcher.pending:
            self.watcher.wait(timeout_s)
            self._report = self.watcher.report(backup_bucket=self.config.backup_bucket)
        return self._report

    @property
    def last_report(self) -> HealReport | None:
        return self._report

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def summary(self) -> dict[str, Any]:
        report = self._report
        return {
            "faults": [vars(fault) for fault in self.faults],
            "recovery_after_resume_s": self.recovery_after_resume_s(),
            "time_to_heal": report.summary() if report else None,
            "time_to_heal_s": report.time_to_heal_s if report else {},
            "faulted_at": self.watcher.faulted_at(),
            "lost_keys": list(report.lost) if report else [],
            "corrupted_keys": list(report.corrupted) if report else [],
            "measured_at": time.time(),
        }


_current: Ledger | None = None


def begin(config: ExperimentConfig) -> Ledger:
    global _current
    end()
    _current = Ledger.start(config)
    return _current


def current() -> Ledger | None:
    return _current


def end() -> None:
    global _current
    if _current is not None:
        _current.stop()
    _current = None
