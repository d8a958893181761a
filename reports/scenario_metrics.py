"""Scenario results: the SLO verdict, the metrics record, and the HTML fragment for pytest-html."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from . import charts


@dataclass(frozen=True)
class Slo:
    """A recovery-time objective: percentiles in seconds from the delete, and lost objects allowed.

    ``per_object_s`` grows the percentiles with the number of objects deleted at once: healing is
    throughput-bound, so 10,000 deletes cannot come back as fast as 10.
    """

    p99_s: float
    p50_s: float | None = None
    lost: int = 0
    per_object_s: float = 0.0

    def for_scale(self, deleted: int) -> Slo:
        """The objective for ``deleted`` objects, with the per-object allowance folded in."""
        extra = self.per_object_s * deleted
        return Slo(
            p99_s=self.p99_s + extra,
            p50_s=None if self.p50_s is None else self.p50_s + extra,
            lost=self.lost,
        )

    def misses(self, summary: dict[str, Any], lost_keys: list[str]) -> list[str]:
        """One line per objective the measurement missed, saying by how much."""
        found = []
        lost = int(summary.get("lost", 0)) + int(summary.get("corrupted", 0))
        if lost > self.lost:
            shown = ", ".join(repr(key) for key in lost_keys[:20])
            more = f" (+{len(lost_keys) - 20} more)" if len(lost_keys) > 20 else ""
            found.append(f"lost {lost} object(s), SLO allows {self.lost}: {shown}{more}")
        for name, limit in (("p99_s", self.p99_s), ("p50_s", self.p50_s)):
            measured = summary.get(name)
            if limit is None:
                continue
            if measured is None:
                found.append(f"time-to-heal {name[:-2]}: nothing healed to measure (SLO {limit:g}s)")
            elif measured > limit:
                found.append(
                    f"time-to-heal {name[:-2]} {measured:.2f}s missed the SLO of {limit:g}s by {measured - limit:.2f}s"
                )
        return found


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def record(
    *,
    scenario: str,
    pattern: str,
    scale: int,
    deleted: int,
    summary: dict[str, Any],
    slo: Slo,
    backend: str,
    duplicates_handled: int,
    parity_note: str = "",
) -> dict[str, Any]:
    """One line of reports/metrics.json."""
    return {
        "scenario": scenario,
        "pattern": pattern,
        "scale": scale,
        "deleted": deleted,
        **{key: summary.get(key) for key in ("healed", "lost", "corrupted", "p50_s", "p95_s", "p99_s", "max_s")},
        "duplicates_handled": duplicates_handled,
        "slo": {"p99_s": round(slo.p99_s, 3), "p50_s": slo.p50_s, "lost": slo.lost},
        "slo_met": not slo.misses(summary, []),
        "backend": backend,
        "parity_note": parity_note,
        "versions": {
            "python": platform.python_version(),
            "moto": _version("moto"),
            "boto3": _version("boto3"),
            "s3-self-healing": _version("s3-self-healing"),
        },
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def html_fragment(
    metrics: dict[str, Any], time_to_heal_s: dict[str, float], faulted_at: dict[str, float], misses: list[str]
) -> str:
    """The per-scenario block shown in the pytest-html report: verdict, numbers, two charts."""
    verdict = "SLO met" if not misses else "SLO missed"
    colour = "#16a34a" if not misses else "#dc2626"

    def seconds(name: str) -> str:
        value = metrics.get(name)
        return "n/a" if value is None else f"{value:.2f} s"

    cells = "".join(
        f"<td style='padding:2px 10px'><b>{label}</b><br>{value}</td>"
        for label, value in [
            ("deleted", metrics["deleted"]),
            ("healed", metrics["healed"]),
            ("lost", metrics["lost"]),
            ("p50", seconds("p50_s")),
            ("p95", seconds("p95_s")),
            ("p99", seconds("p99_s")),
            ("max", seconds("max_s")),
            ("SLO p99", f"{metrics['slo']['p99_s']:g} s"),
            ("duplicates handled", metrics["duplicates_handled"]),
        ]
    )
    histogram = charts.time_to_heal_histogram(list(time_to_heal_s.values()), slo_s=metrics["slo"]["p99_s"])
    note = f"<p style='color:#b45309'>Parity note: {metrics['parity_note']}</p>" if metrics["parity_note"] else ""
    missed = "".join(f"<li>{line}</li>" for line in misses)
    return (
        f"<div><p><span style='background:{colour};color:white;padding:2px 10px;border-radius:9px'>{verdict}</span> "
        f"{metrics['pattern']} × {metrics['scale']} on {metrics['backend']}</p>{note}"
        f"<ul style='color:#dc2626'>{missed}</ul><table><tr>{cells}</tr></table>"
        "<style>.s3sh-chart svg{width:100%;height:auto}</style>"
        f"<div style='display:flex;gap:12px;flex-wrap:wrap'>"
        f"<div class='s3sh-chart' style='width:480px'>{histogram}</div>"
        f"<div class='s3sh-chart' style='width:480px'>{charts.recovery_curve(faulted_at, time_to_heal_s)}</div>"
        "</div></div>"
    )


def scenario_table(records: list[dict[str, Any]]) -> str:
    """One row per scenario: verdict, scale, percentiles against the SLO, lost."""

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    rows = "".join(
        "<tr>"
        f"<td style='color:{'#16a34a' if r['slo_met'] else '#dc2626'};font-weight:bold'>"
        f"{'met' if r['slo_met'] else 'MISSED'}</td>"
        f"<td>{r['pattern']}</td><td>{r['scale']}</td><td>{r['deleted']}</td><td>{r['healed']}</td>"
        f"<td>{r['lost']}</td><td>{seconds(r['p50_s'])}</td><td>{seconds(r['p95_s'])}</td>"
        f"<td>{seconds(r['p99_s'])}</td><td>{r['slo']['p99_s']:g}</td><td>{r['backend']}</td>"
        f"<td>{'⚠ ' + r['parity_note'][:60] + '…' if r['parity_note'] else ''}</td></tr>"
        for r in records
    )
    head = "".join(
        f"<th style='text-align:left;padding:2px 8px'>{name}</th>"
        for name in [
            "SLO",
            "pattern",
            "scale",
            "deleted",
            "healed",
            "lost",
            "p50 s",
            "p95 s",
            "p99 s",
            "SLO p99 s",
            "backend",
            "parity",
        ]
    )
    return f"<h2>Scenarios</h2><table style='border-collapse:collapse'><tr>{head}</tr>{rows}</table>"
