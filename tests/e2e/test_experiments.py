"""The Chaos Toolkit experiments, run through chaoslib's Python API against the session emulator."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from chaoslib.experiment import run_experiment
from chaoslib.loader import load_experiment

pytestmark = pytest.mark.e2e

EXPERIMENTS = sorted((Path(__file__).parents[2] / "experiments").glob("*.json"))
# Smaller than the files' defaults so the suite stays quick; the README's command runs them full size.
TEST_SEED_OBJECTS = 200


def _prepare(path: Path, emulator: Any, prefix: str, report_dir: Path, **configuration: Any) -> dict[str, Any]:
    experiment = copy.deepcopy(load_experiment(str(path)))
    experiment["configuration"].update(
        {"endpoint_url": emulator.target.endpoint_url, "stack_prefix": prefix, "seed_objects": TEST_SEED_OBJECTS}
    )
    experiment["configuration"].update(configuration)
    for control in experiment["controls"]:
        if control["name"] == "report":
            control["provider"]["arguments"] = {"output_dir": str(report_dir)}
    return experiment


def _run(experiment: dict[str, Any]) -> dict[str, Any]:
    # chaoslib installs signal handlers: it must run on the main thread.
    assert threading.current_thread() is threading.main_thread()
    return run_experiment(experiment)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_holds_its_hypothesis(path, emulator, worker_id_prefix, tmp_path):
    experiment = _prepare(path, emulator, f"{worker_id_prefix}-{path.stem[:12]}", tmp_path)

    journal = _run(experiment)

    failed = [run["activity"]["name"] for run in journal["run"] if run["status"] != "succeeded"]
    assert journal["status"] == "completed", failed
    assert journal["deviated"] is False
    assert failed == []
    stats = journal["measurements"]["time_to_heal"]
    assert stats["lost"] == 0 and stats["corrupted"] == 0 and stats["healed"] > 0, stats
    print(f"\n{path.stem}: {stats}")
    (report,) = tmp_path.glob("chaos/*/report.html")
    assert "<svg" in report.read_text(encoding="utf-8")  # the time-to-heal charts are inlined


def test_a_broken_healer_makes_the_experiment_deviate(make_pipeline, emulator, tmp_path):
    # The healer looks for backups in a bucket that does not exist: nothing can come back.
    pipeline = make_pipeline(objects=TEST_SEED_OBJECTS, healer_environment={"BACKUP_BUCKET": "no-such-backup-bucket"})
    given_stack = {key: value for key, value in pipeline.outputs.to_dict().items() if value is not None}
    experiment = _prepare(
        EXPERIMENTS_BY_NAME["mass-delete"],
        emulator,
        pipeline.names.prefix,
        tmp_path,
        recovery_timeout_s=5,
        **given_stack,
    )

    journal = _run(experiment)

    assert journal["deviated"] is True
    after = {probe["activity"]["name"]: probe for probe in journal["steady_states"]["after"]["probes"]}
    assert after["all-objects-intact"]["tolerance_met"] is False
    assert journal["measurements"]["time_to_heal"]["lost"] > 0


def test_secrets_never_reach_the_journal_or_the_report(emulator, worker_id_prefix, tmp_path, monkeypatch):
    secret = "tok-s3sh-very-secret-0123456789"
    monkeypatch.setenv("LOCALSTACK_AUTH_TOKEN", secret)
    experiment = _prepare(
        EXPERIMENTS_BY_NAME["batch-delete"],
        emulator,
        f"{worker_id_prefix}-secrets",
        tmp_path,
        seed_objects=20,
        note=f"leaked {secret} here",
    )
    experiment["secrets"] = {"emulator": {"auth_token": {"type": "env", "key": "LOCALSTACK_AUTH_TOKEN"}}}

    journal = _run(experiment)

    assert journal["status"] == "completed"
    written = [path.read_text(encoding="utf-8") for path in tmp_path.glob("chaos/*/*") if path.is_file()]
    assert len(written) == 2  # journal.json and report.html
    for text in [json.dumps(journal), *written]:
        assert secret not in text
    assert "leaked *** here" in written[0] + written[1]  # masked, so the test is not vacuous


EXPERIMENTS_BY_NAME = {path.stem: path for path in EXPERIMENTS}
