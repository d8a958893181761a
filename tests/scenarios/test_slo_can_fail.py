"""The scenario suite is able to fail: a deliberately broken healer must miss its SLOs loudly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]


def test_a_broken_healer_fails_the_scenarios_with_a_clear_slo_message(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/scenarios/test_scenarios.py::test_awkward_keys_come_back",
            "--break-healer",
            "--slo-p99",
            "5",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            f"--html={tmp_path / 'report.html'}",
            f"--junitxml={tmp_path / 'junit.xml'}",
            "-o",
            f"metrics_path={tmp_path / 'metrics.json'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 1, result.stdout[-3000:]
    assert "awkward-keys × 8 missed its SLO" in result.stdout
    assert "lost 8 object(s), SLO allows 0: 'emoji/📦 parcel.bin'" in result.stdout
    assert "time-to-heal p99: nothing healed to measure (SLO 5s)" in result.stdout
    (record,) = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert (record["lost"], record["slo_met"], record["outcome"]) == (8, False, "failed")
    assert "SLO missed" in (tmp_path / "report.html").read_text(encoding="utf-8")
