"""The HTML report of one chaos experiment run: SLO verdict, charts, activities."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from . import charts

_environment = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html", "j2"]))


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "experiment"


def verdict(journal: dict[str, Any]) -> str:
    if journal.get("deviated"):
        return "deviated"
    return str(journal.get("status", "unknown"))


def render(journal: dict[str, Any], slo: dict[str, Any]) -> str:
    """Self-contained HTML (charts inlined as SVG) for a finished run's journal."""
    measurements = journal.get("measurements") or {}
    healed: dict[str, float] = measurements.get("time_to_heal_s") or {}
    stats = measurements.get("time_to_heal") or {}
    slo_p99 = slo.get("slo_p99_s")
    runs = journal.get("run", [])
    return _environment.get_template("chaos_report.html.j2").render(
        title=journal.get("experiment", {}).get("title", "experiment"),
        description=journal.get("experiment", {}).get("description", ""),
        verdict=verdict(journal),
        journal=journal,
        stats=stats,
        slo=slo,
        faults=measurements.get("faults", []),
        lost_keys=measurements.get("lost_keys", []),
        recovery_after_resume_s=measurements.get("recovery_after_resume_s"),
        corrupted_keys=measurements.get("corrupted_keys", []),
        runs=runs,
        steady_before=(journal.get("steady_states") or {}).get("before") or {},
        steady_after=(journal.get("steady_states") or {}).get("after") or {},
        histogram=charts.time_to_heal_histogram(list(healed.values()), slo_s=float(slo_p99) if slo_p99 else None),
        curve=charts.recovery_curve(measurements.get("faulted_at") or {}, healed),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def write(journal: dict[str, Any], slo: dict[str, Any], output_dir: Path) -> tuple[Path, Path]:
    """Write ``journal.json`` and ``report.html`` into a new folder under ``output_dir``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    title = journal.get("experiment", {}).get("title", "experiment")
    folder = output_dir / "chaos" / f"{stamp}-{slug(title)}"
    folder.mkdir(parents=True, exist_ok=True)
    journal_path = folder / "journal.json"
    journal_path.write_text(json.dumps(journal, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    report_path = folder / "report.html"
    report_path.write_text(render(journal, slo), encoding="utf-8")
    history = output_dir / "chaos" / "history.jsonl"
    stats = (journal.get("measurements") or {}).get("time_to_heal") or {}
    with history.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"title": title, "at": stamp, "verdict": verdict(journal), **stats}) + "\n")
    return journal_path, report_path
