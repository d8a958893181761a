"""The fault matrix: every fault, then the sweep and a redrive; nothing lost, nothing clobbered.

Each row deletes objects on its own stack under one fault, lets the healer work, redrives the
dead-letter queue, runs the reconciliation sweep, and checks every object byte for byte. The
summary table lands in reports/fault-matrix.md (and .json) via reports/pytest_plugin.py.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from healer.deadletter import s3_removed_message
from provisioning.faults.proxy import FaultProxy
from provisioning.faults.rules import FaultRule
from provisioning.observe import audit_lines, delete_keys, queue_depth, sha256_of
from provisioning.pipeline import Pipeline
from provisioning.reconcile import redrive, run_sweep
from reports.pytest_plugin import FAULT_ROW_PROPERTY

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("requires_local_runtime")]
OBJECTS = 100
DELETED = 40


@dataclass
class Row:
    fault: str
    deleted: int = 0
    healed_by_event: int = 0
    healed_by_sweep: int = 0
    dead_lettered_then_redriven: int = 0
    reuploaded: int = 0
    lost: int = 0
    clobbered: int = 0
    notes: list[str] = field(default_factory=list)


@pytest.fixture
def proxy(emulator) -> Iterator[FaultProxy]:
    with FaultProxy(emulator.target.endpoint_url).with_seed(7) as started:
        yield started


@pytest.fixture
def stack(make_pipeline, proxy) -> Pipeline:
    # The healer's and the sweep's own AWS calls go through the fault proxy; no scheduled sweep:
    # the test runs it when it wants to.
    return make_pipeline(objects=OBJECTS, sweep_every_s=0, function_endpoint_url=proxy.url)


def _settle(pipeline: Pipeline, timeout_s: float = 90) -> None:
    assert pipeline.runtime is not None and pipeline.runtime.wait_idle(timeout_s), pipeline.runtime.stats()


def _publish_removed(pipeline: Pipeline, keys: list[str]) -> None:
    sns = pipeline.target.sns()
    for key in keys:
        message = s3_removed_message(pipeline.names.production_bucket, key)
        sns.publish(TopicArn=pipeline.outputs.topic_arn, Message=json.dumps(message))


def _healed_keys(pipeline: Pipeline, victims: list[str], newer: dict[str, str]) -> set[str]:
    """Victims the healer's audit log shows back: healed, or found already restored.

    "kept-existing" counts for a key that was not re-uploaded: an invocation that crashed after
    its write is retried, and the retry finds the object it had itself restored.
    """
    assert pipeline.runtime is not None
    pipeline.runtime.flush_logs()
    lines = audit_lines(pipeline.target.logs(), pipeline.names.log_group)
    wanted = set(victims) - set(newer)
    return {line["key"] for line in lines if line["outcome"] in {"healed", "kept-existing"} and line["key"] in wanted}


def _finish(pipeline: Pipeline, row: Row, victims: list[str], newer: dict[str, str], *, sweep: bool = True) -> Row:
    """Redrive, sweep, then judge every object: back and byte-identical, re-uploads untouched."""
    _settle(pipeline)
    target = pipeline.target
    by_event = _healed_keys(pipeline, victims, newer)
    row.healed_by_event = len(by_event)
    row.reuploaded = len(newer)
    if queue_depth(target.sqs(), pipeline.outputs.dead_letter_queue_url):
        redriven = redrive(target, pipeline.outputs.dead_letter_queue_url, pipeline.outputs.topic_arn)
        _settle(pipeline)
        row.dead_lettered_then_redriven = len(_healed_keys(pipeline, victims, newer) - by_event)
        row.notes.append(f"{redriven['redriven']} dead-letter record(s) redriven")
    if sweep:
        row.healed_by_sweep = run_sweep(
            target, pipeline.names, dead_letter_queue_url=pipeline.outputs.dead_letter_queue_url
        ).healed
    expected = {item.key: item.sha256 for item in pipeline.seeded}
    s3 = target.s3()
    for key in victims:
        actual = sha256_of(s3, pipeline.names.production_bucket, key)
        if key in newer:
            row.clobbered += actual != newer[key]
        else:
            row.lost += actual != expected[key]
    return row


def _victims(pipeline: Pipeline, count: int = DELETED, seed: int = 1) -> list[str]:
    return sorted(random.Random(seed).sample(sorted(item.key for item in pipeline.seeded), count))


# -- the faults ------------------------------------------------------------------------------


def duplicates_x3(pipeline: Pipeline, proxy: FaultProxy) -> Row:
    victims = _victims(pipeline)
    delete_keys(pipeline.target.s3(), pipeline.names.production_bucket, victims, batch=False)
    _publish_removed(pipeline, victims * 3)
    return _finish(pipeline, Row("duplicates x3", deleted=len(victims)), victims, {})


def reordering(pipeline: Pipeline, proxy: FaultProxy) -> Row:
    victims = _victims(pipeline)
    s3 = pipeline.target.s3()
    pipeline.target.lambda_().put_function_concurrency(
        FunctionName=pipeline.names.function, ReservedConcurrentExecutions=0
    )
    _wait(lambda: pipeline.runtime.stats().reserved_concurrency == 0)
    delete_keys(s3, pipeline.names.production_bucket, victims, batch=False)
    newer = {}
    for key in victims[:10]:  # re-uploaded before any event is handled: their events arrive "late"
        body = f"newer {key}".encode()
        s3.put_object(Bucket=pipeline.names.production_bucket, Key=key, Body=body)
        newer[key] = hashlib.sha256(body).hexdigest()
    shuffled = victims[:]
    random.Random(3).shuffle(shuffled)
    _publish_removed(pipeline, shuffled)  # the same events again, in another order
    pipeline.target.lambda_().delete_function_concurrency(FunctionName=pipeline.names.function)
    return _finish(pipeline, Row("reordering (+10 re-uploads)", deleted=len(victims)), victims, newer)


def ten_percent_dropped(pipeline: Pipeline, proxy: FaultProxy, *, sweep: bool = True) -> Row:
    assert pipeline.runtime is not None
    pipeline.runtime.drop_deliveries(0.10, seed=5)
    victims = _victims(pipeline, 60)
    delete_keys(pipeline.target.s3(), pipeline.names.production_bucket, victims, batch=False)
    row = Row("10% of notifications dropped" + ("" if sweep else ", sweep disabled"), deleted=len(victims))
    row.notes.append(f"{pipeline.runtime.dropped_deliveries} deliveries dropped")
    return _finish(pipeline, row, victims, {}, sweep=sweep)


def healer_paused_30s(pipeline: Pipeline, proxy: FaultProxy) -> Row:
    lam = pipeline.target.lambda_()
    lam.put_function_concurrency(FunctionName=pipeline.names.function, ReservedConcurrentExecutions=0)
    _wait(lambda: pipeline.runtime.stats().reserved_concurrency == 0)
    victims = _victims(pipeline)
    delete_keys(pipeline.target.s3(), pipeline.names.production_bucket, victims, batch=False)
    paused_until = time.monotonic() + 30
    held = _wait(lambda: pipeline.runtime.stats().pending >= len(victims))
    # The outage lasts 30 s: nothing may be healed during it.
    assert held and not _wait(lambda: pipeline.runtime.stats().attempts > 0, max(0.0, paused_until - time.monotonic()))
    lam.delete_function_concurrency(FunctionName=pipeline.names.function)
    return _finish(pipeline, Row("healer paused 30 s", deleted=len(victims)), victims, {})


def throttled_writes_20_percent(pipeline: Pipeline, proxy: FaultProxy) -> Row:
    # Restores write with PutObject (up to 16 MiB) or CopyObject: throttle both.
    for operation in ("PutObject", "CopyObject"):
        proxy.add_rule(FaultRule("slowdown", service="s3", operation=operation, probability=0.2))
    victims = _victims(pipeline)
    delete_keys(pipeline.target.s3(), pipeline.names.production_bucket, victims, batch=False)
    row = _finish(pipeline, Row("20% throttling on restore writes", deleted=len(victims)), victims, {})
    row.notes.append(f"{proxy.stats()['injected'].get('slowdown', 0)} SlowDown answers injected")
    return row


def backup_access_denied_10s(pipeline: Pipeline, proxy: FaultProxy) -> Row:
    proxy.add_rule(
        FaultRule("access-denied", service="s3", bucket=pipeline.names.backup_bucket, until=time.time() + 10)
    )
    victims = _victims(pipeline)
    delete_keys(pipeline.target.s3(), pipeline.names.production_bucket, victims, batch=False)
    # AccessDenied is not transient: three attempts, then the dead-letter queue.
    sqs = pipeline.target.sqs()
    _wait(lambda: queue_depth(sqs, pipeline.outputs.dead_letter_queue_url) >= len(victims), 30)
    _wait(lambda: not proxy.rules(), 15)  # the denial expires after its 10 s
    return _finish(pipeline, Row("backup AccessDenied for 10 s", deleted=len(victims)), victims, {})


def healer_crash_mid_batch(pipeline: Pipeline, proxy: FaultProxy) -> Row:
    assert pipeline.runtime is not None
    proxy.add_rule(FaultRule("latency", service="s3", operation="PutObject", latency_s=0.3))  # keep them in flight
    victims = _victims(pipeline)
    delete_keys(pipeline.target.s3(), pipeline.names.production_bucket, victims, batch=True)
    runtime = pipeline.runtime
    # Warm environments busy with invocations: some finished, more in flight.
    assert _wait(lambda: runtime.stats().succeeded >= 1 and runtime.stats().in_flight > 0)
    killed = runtime.kill_environments()
    proxy.clear_rules()
    row = _finish(pipeline, Row("healer crash mid-batch", deleted=len(victims)), victims, {})
    crashed = runtime.stats().failed_attempts
    row.notes.append(f"{killed} execution environment(s) killed, {crashed} invocation(s) crashed and retried")
    assert killed > 0 and crashed > 0, "the crash did not happen"
    return row


def _wait(predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    return retry(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(0.1),
        retry=retry_if_result(lambda ok: not ok),
        retry_error_callback=lambda state: False,
    )(predicate)()


FAULTS = [
    duplicates_x3,
    reordering,
    ten_percent_dropped,
    healer_paused_30s,
    throttled_writes_20_percent,
    backup_access_denied_10s,
    healer_crash_mid_batch,
]


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.__name__.replace("_", "-") for fault in FAULTS])
def test_nothing_lost_and_nothing_clobbered_under(fault, stack, proxy, record_property):
    row = fault(stack, proxy)

    record_property(FAULT_ROW_PROPERTY, json.dumps(vars(row)))
    print(f"\n{vars(row)}")
    assert (row.lost, row.clobbered) == (0, 0), vars(row)
    # Every deleted key is accounted for: healed by its event, by a redrive, by the sweep, or
    # left alone because a newer upload took its place.
    accounted = row.healed_by_event + row.dead_lettered_then_redriven + row.healed_by_sweep + row.reuploaded
    assert accounted >= row.deleted, vars(row)


def test_without_the_sweep_dropped_notifications_lose_objects(stack, proxy, record_property):
    """The control experiment: the same 10% drop with no sweep shows the loss the sweep prevents."""
    row = ten_percent_dropped(stack, proxy, sweep=False)

    record_property(FAULT_ROW_PROPERTY, json.dumps(vars(row)))
    assert stack.runtime is not None and stack.runtime.dropped_deliveries > 0
    assert row.lost == stack.runtime.dropped_deliveries > 0, vars(row)
