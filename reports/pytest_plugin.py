"""pytest plugin for the scenario suite: SLO marker, scales, metrics file and HTML charts.

- ``@pytest.mark.slo(p99_s=…, p50_s=…, lost=…)`` declares a scenario's objective; defaults come
  from ``[tool.pytest.ini_options]`` (``slo_p99_s``, ``slo_p50_s``, ``slo_lost``) and
  ``--slo-p99``/``--slo-p50`` override both.
- ``--scale N`` (repeatable) replaces the default scales of tests that take a ``scale`` argument.
- Every scenario's record travels in ``user_properties`` (so it survives xdist's trip from
  worker to controller) and the controller writes them all to ``reports/metrics.json``.
- Charts are attached to the pytest-html report as extras.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .scenario_metrics import Slo, scenario_table

METRICS_PROPERTY = "s3sh_metrics"
FAULT_ROW_PROPERTY = "s3sh_fault_row"
FAULT_COLUMNS = (
    ("fault", "fault"),
    ("deleted", "deleted"),
    ("healed_by_event", "healed by event"),
    ("healed_by_sweep", "healed by sweep"),
    ("dead_lettered_then_redriven", "dead-lettered then redriven"),
    ("reuploaded", "re-uploads kept"),
    ("lost", "lost"),
    ("clobbered", "clobbered"),
)
DEFAULT_SCALES = (10, 100, 1000)
_HTML_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("slo_p99_s", "default time-to-heal p99 SLO in seconds", default="30")
    parser.addini("slo_p50_s", "default time-to-heal p50 SLO in seconds (empty: none)", default="")
    parser.addini("slo_lost", "default number of objects a scenario may lose", default="0")
    parser.addini("metrics_path", "where the scenario metrics are written", default="reports/metrics.json")
    group = parser.getgroup("s3-self-healing scenarios")
    group.addoption("--slo-p99", type=float, help="override every scenario's p99 SLO (seconds)")
    group.addoption("--slo-p50", type=float, help="override every scenario's p50 SLO (seconds)")
    group.addoption("--scale", type=int, action="append", help=f"object counts to run at (default {DEFAULT_SCALES})")
    group.addoption(
        "--break-healer",
        action="store_true",
        help="deploy the healer pointed at a backup bucket that does not exist (proves the SLOs can fail)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slo(p99_s=None, p50_s=None, lost=None, per_object_s=0): the scenario's recovery objective"
    )
    for scale in config.getoption("scale") or []:
        if scale <= 0:
            raise pytest.UsageError(f"--scale {scale}: a scale is a positive number of objects")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scale" in metafunc.fixturenames:
        scales = metafunc.config.getoption("scale") or list(DEFAULT_SCALES)
        metafunc.parametrize("scale", scales, ids=[f"{scale}-objects" for scale in scales])


@pytest.fixture
def slo(request: pytest.FixtureRequest) -> Slo:
    """The scenario's SLO: command line over marker over pyproject defaults."""
    config = request.config
    marker = request.node.get_closest_marker("slo")
    declared = dict(marker.kwargs) if marker else {}
    p50_default = config.getini("slo_p50_s")
    p99 = config.getoption("slo_p99") or declared.get("p99_s") or float(config.getini("slo_p99_s"))
    p50 = config.getoption("slo_p50") or declared.get("p50_s") or (float(p50_default) if p50_default else None)
    lost = declared.get("lost")
    return Slo(
        p99_s=float(p99),
        p50_s=float(p50) if p50 else None,
        lost=int(config.getini("slo_lost") if lost is None else lost),
        # A command-line override is an absolute number: it replaces the per-object allowance too.
        per_object_s=0.0 if config.getoption("slo_p99") else float(declared.get("per_object_s", 0.0)),
    )


@pytest.fixture
def publish_scenario(request: pytest.FixtureRequest) -> Callable[[dict[str, Any], str], None]:
    """Attach a scenario's metrics record and HTML block to this test's report."""

    def publish(metrics: dict[str, Any], html: str) -> None:
        request.node.user_properties.append((METRICS_PROPERTY, json.dumps(metrics)))
        request.node.stash[_HTML_KEY] = html

    return publish


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    html = item.stash.get(_HTML_KEY, None)
    if report.when == "call" and html is not None:
        try:
            from pytest_html import extras
        except ImportError:  # pragma: no cover - pytest-html is a test dependency
            return
        report.extras = [*getattr(report, "extras", []), extras.html(html)]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Runs in the controller under xdist (and in the only process without it).
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == METRICS_PROPERTY:
            record = json.loads(str(value))
            record["outcome"] = report.outcome
            _records.append(record)
        elif name == FAULT_ROW_PROPERTY:
            row = json.loads(str(value))
            row["outcome"] = report.outcome
            _fault_rows.append(row)


_records: list[dict[str, Any]] = []
_fault_rows: list[dict[str, Any]] = []


def pytest_html_report_title(report: Any) -> None:
    report.title = "s3-self-healing: recovery scenarios"


def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str]) -> None:
    """A table of every scenario's verdict at the top of the HTML report."""
    if _records:
        prefix.append(scenario_table(sorted(_records, key=lambda r: (r["pattern"], r["scale"]))))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # workers send their records to the controller
    if _fault_rows:
        _write_fault_matrix(Path(session.config.rootpath, session.config.getini("metrics_path")).parent)
    if not _records:
        return  # a run without scenarios writes no metrics
    path = Path(session.config.rootpath, session.config.getini("metrics_path"))
    path.parent.mkdir(parents=True, exist_ok=True)
    records = sorted(_records, key=lambda r: (r["pattern"], r["scale"]))
    path.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    with path.with_name("metrics-history.jsonl").open("a", encoding="utf-8") as history:
        for record in records:
            history.write(json.dumps(record) + "\n")


def _write_fault_matrix(directory: Path) -> None:
    """reports/fault-matrix.json and a Markdown table of the same rows."""
    rows = sorted(_fault_rows, key=lambda row: str(row["fault"]))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fault-matrix.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    header = "| " + " | ".join(title for _, title in FAULT_COLUMNS) + " | test | notes |"
    lines = [header, "|" + "---|" * (len(FAULT_COLUMNS) + 2)]
    for row in rows:
        cells = [str(row.get(key, "")) for key, _ in FAULT_COLUMNS]
        lines.append("| " + " | ".join([*cells, str(row["outcome"]), "; ".join(row.get("notes", []))]) + " |")
    (directory / "fault-matrix.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
