"""Experiment files and the extension's modules, checked without running anything."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from chaoslib.discovery.discover import discover_activities

ROOT = Path(__file__).parents[2]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.json"))
REQUIRED = {"mass-delete", "prefix-wipe", "batch-delete", "healer-outage", "duplicate-events", "backup-unavailable"}
CHAOS = [sys.executable, "-m", "chaostoolkit", "--no-version-check"]


def test_every_required_experiment_exists():
    assert {path.stem for path in EXPERIMENTS} >= REQUIRED


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_chaos_validate_passes(path):
    result = subprocess.run([*CHAOS, "validate", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "experiment syntax and semantic look valid" in result.stdout + result.stderr


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_declares_slo_rollbacks_and_controls(path):
    experiment = json.loads(path.read_text(encoding="utf-8"))
    assert experiment["configuration"]["slo_p99_s"] > 0
    assert experiment["rollbacks"], "every experiment leaves the environment whole"
    assert [control["name"] for control in experiment["controls"]] == ["environment", "measurement", "report"]
    names = [probe["name"] for probe in experiment["steady-state-hypothesis"]["probes"]]
    assert {"all-objects-intact", "time-to-heal-within-slo", "nothing-dead-lettered"} <= set(names)


@pytest.mark.parametrize(
    ("module", "kind"),
    [("experiments.actions", "action"), ("experiments.probes", "probe"), ("experiments.tolerances", "probe")],
)
def test_every_exported_activity_is_discoverable(module, kind):
    exported = set(importlib.import_module(module).__all__)
    discovered = {activity["name"] for activity in discover_activities(module, kind)}
    assert discovered == exported


@pytest.mark.parametrize("module", ["experiments.actions", "experiments.probes"])
def test_activities_are_typed_and_end_with_configuration_and_secrets(module):
    loaded = importlib.import_module(module)
    for name in loaded.__all__:
        signature = inspect.signature(getattr(loaded, name))
        assert list(signature.parameters)[-2:] == ["configuration", "secrets"], name
        for parameter in signature.parameters.values():
            assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name}) has no type"


def test_control_modules_export_their_hooks():
    for name in ("environment", "measurement", "report"):
        module = importlib.import_module(f"experiments.controls.{name}")
        assert module.__all__
        for hook in module.__all__:
            assert callable(getattr(module, hook))
