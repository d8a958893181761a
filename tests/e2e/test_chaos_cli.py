"""The README's main command, `chaos run`, as users type it: exit codes, journal and report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]
CHAOS = [sys.executable, "-m", "chaostoolkit", "--no-version-check"]


def _chaos_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHAOS, "run", *args, str(ROOT / "experiments" / "mass-delete.json")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_main_command_runs_mass_delete_to_completion(tmp_path):
    """`chaos --no-version-check run experiments/mass-delete.json`, full size, nothing else started."""
    result = _chaos_run(tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    (journal_path,) = tmp_path.glob("reports/chaos/*/journal.json")
    journal = json.loads(journal_path.read_text(encoding="utf-8"))
    assert journal["status"] == "completed" and journal["deviated"] is False
    stats = journal["measurements"]["time_to_heal"]
    assert stats["healed"] == 500 and stats["lost"] == 0, stats
    html = (journal_path.parent / "report.html").read_text(encoding="utf-8")
    assert "Time-to-heal distribution" in html and "Recovery curve" in html
    print(f"\nmass-delete (1,000 seeded, 500 deleted): {stats}")


def test_chaos_run_exits_1_when_the_hypothesis_deviates(tmp_path):
    # An SLO no pipeline can meet: the run must say so with its exit code.
    result = _chaos_run(tmp_path, "--var", "seed_objects:int=50", "--var", "slo_p99_s:float=0.000001")

    assert result.returncode == 1, result.stderr[-3000:]
    assert "SLO missed: time-to-heal p99" in result.stderr
    (journal_path,) = tmp_path.glob("reports/chaos/*/journal.json")
    assert json.loads(journal_path.read_text(encoding="utf-8"))["deviated"] is True
