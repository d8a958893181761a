"""Running one scenario: fault, measure from the client side, cross-check the audit log, judge the SLO."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from provisioning.observe import HealWatcher, audit_lines, queue_depth
from provisioning.pipeline import Pipeline
from provisioning.seed import SeededObject
from reports.scenario_metrics import Slo, html_fragment, record

# Keys not back within twice the p99 objective (plus a margin) are counted as lost.
HEAL_WAIT_FACTOR = 2.0
HEAL_WAIT_MARGIN_S = 10.0


@dataclass
class Scenario:
    """What one scenario did: the keys it faulted (with send times) and the healthy state to expect."""

    pattern: str
    scale: int
    pipeline: Pipeline
    expected: dict[str, SeededObject]
    faulted_at: dict[str, float] = field(default_factory=dict)
    reuploaded: dict[str, SeededObject] = field(default_factory=dict)
    parity_note: str = ""


def seeded_object(
    key: str, body: bytes, content_type: str = "application/octet-stream", **metadata: str
) -> tuple[SeededObject, bytes]:
    return (
        SeededObject(
            key=key,
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            md5=hashlib.md5(body, usedforsecurity=False).hexdigest(),
            content_type=content_type,
            metadata=metadata,
        ),
        body,
    )


def put_objects(pipeline: Pipeline, objects: Iterable[tuple[SeededObject, bytes]]) -> dict[str, SeededObject]:
    """Write hand-made objects to backup and production (for scenarios that need special keys or sizes)."""
    s3 = pipeline.target.s3()
    written = {}
    for item, body in objects:
        for bucket in (pipeline.names.backup_bucket, pipeline.names.production_bucket):
            s3.put_object(Bucket=bucket, Key=item.key, Body=body, ContentType=item.content_type, Metadata=item.metadata)
        written[item.key] = item
    return written


@pytest.fixture
def measure(
    slo: Slo, emulator: Any, publish_scenario: Callable[[dict[str, Any], str], None]
) -> Callable[[Scenario], dict[str, Any]]:
    """Wait for the scenario's keys to heal, publish metrics and charts, and assert the SLO."""

    def run(scenario: Scenario) -> dict[str, Any]:
        objective = slo.for_scale(len(scenario.faulted_at))
        pipeline = scenario.pipeline
        s3 = pipeline.target.s3()
        healthy = {key: item.md5 for key, item in scenario.expected.items()}
        watcher = HealWatcher(s3, pipeline.names.production_bucket, healthy)
        for key, item in scenario.reuploaded.items():
            watcher.expect(key, item.md5)
        watcher.add(scenario.faulted_at)
        watcher.wait(HEAL_WAIT_FACTOR * objective.p99_s + HEAL_WAIT_MARGIN_S)
        expected = {**scenario.expected, **scenario.reuploaded}
        report = watcher.report(expected=expected)
        summary = report.summary()

        if pipeline.runtime is not None:
            pipeline.runtime.wait_idle(60)
            pipeline.runtime.flush_logs()
        lines = audit_lines(pipeline.target.logs(), pipeline.names.log_group)
        audited_healed = {line["key"] for line in lines if line["outcome"] == "healed"}
        duplicates = sum(1 for line in lines if line["outcome"] == "kept-existing")

        metrics = record(
            scenario=f"{scenario.pattern}-{scenario.scale}",
            pattern=scenario.pattern,
            scale=scenario.scale,
            deleted=len(scenario.faulted_at),
            summary=summary,
            slo=objective,
            backend=emulator.backend,
            duplicates_handled=duplicates,
            parity_note=scenario.parity_note,
        )
        misses = objective.misses(summary, [*report.lost, *report.corrupted])
        publish_scenario(metrics, html_fragment(metrics, report.time_to_heal_s, watcher.faulted_at(), misses))
        print(f"\n{scenario.pattern} × {scenario.scale}: {summary}")

        if misses:
            # Evidence for whoever reads the failure: what the healer said about the lost keys.
            missing = set(report.lost) | set(report.corrupted)
            said = [
                f"{line['key']!r}: {line['outcome']} ({line['detail'][:160]})"
                for line in lines
                if line["key"] in missing
            ]
            stats = pipeline.runtime.stats() if pipeline.runtime else "the backend runs Lambda"
            depth = queue_depth(pipeline.target.sqs(), pipeline.outputs.dead_letter_queue_url)
            misses += [
                f"healer audit for them: {said or 'nothing'}",
                f"runtime: {stats}",
                f"dead-letter queue: {depth}",
            ]
        assert not misses, f"{scenario.pattern} × {scenario.scale} missed its SLO:\n  " + "\n  ".join(misses)
        # Cross-check: every object the client saw healed, the healer says it healed (or, for
        # re-uploads, left alone). A healer that logs nothing, or lies, fails here.
        unaccounted = set(report.time_to_heal_s) - audited_healed - set(scenario.reuploaded)
        assert not unaccounted, f"healed but not in the audit log: {sorted(unaccounted)[:10]}"
        return metrics

    return run
