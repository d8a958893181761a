"""End to end: with event delivery gone, the reconciliation sweep still brings every object back."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from typing import Any

import pytest
from tenacity import Retrying, stop_after_delay, wait_fixed

from healer.sweep import SWEEP_EVENT
from provisioning.observe import audit_lines, delete_keys, sha256_of
from provisioning.pipeline import Pipeline
from provisioning.reconcile import run_sweep

pytestmark = pytest.mark.e2e


def stop_event_healing(pipeline: Pipeline) -> None:
    """Cut the healer off its events: deletes now produce no healing at all."""
    if pipeline.runtime is not None:
        pipeline.runtime.stop()  # unsubscribes from the topic
        return
    sns = pipeline.target.sns()  # a backend running Lambda itself: drop its subscription
    for subscription in sns.list_subscriptions_by_topic(TopicArn=pipeline.outputs.topic_arn)["Subscriptions"]:
        if subscription["SubscriptionArn"].startswith("arn:"):
            sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])


def listing(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    s3 = pipeline.target.s3()
    objects: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=pipeline.names.production_bucket):
        for item in page.get("Contents", []):
            objects[item["Key"]] = item
    return objects


def assert_stay_missing(pipeline: Pipeline, keys: list[str], for_s: float = 2.0) -> None:
    deadline = time.monotonic() + for_s
    while True:
        back = set(keys) & set(listing(pipeline))
        assert not back, f"{len(back)} deleted object(s) came back without a sweep: {sorted(back)[:3]}"
        if time.monotonic() >= deadline:
            return
        time.sleep(0.25)


def assert_byte_identical(pipeline: Pipeline, keys: list[str]) -> None:
    s3 = pipeline.target.s3()
    expected = {item.key: item.sha256 for item in pipeline.seeded}
    actual = {key: sha256_of(s3, pipeline.names.production_bucket, key) for key in keys}
    assert actual == {key: expected[key] for key in keys}


def victims(pipeline: Pipeline, count: int, seed: int) -> list[str]:
    return random.Random(seed).sample(sorted(item.key for item in pipeline.seeded), count)


def test_sweep_restores_what_events_never_reported(make_pipeline):
    pipeline = make_pipeline(objects=100, sweep_every_s=0)
    stop_event_healing(pipeline)
    before = listing(pipeline)
    deleted = victims(pipeline, 30, seed=11)

    delete_keys(pipeline.target.s3(), pipeline.names.production_bucket, deleted)
    assert_stay_missing(pipeline, deleted, for_s=2.0)

    result = run_sweep(pipeline.target, pipeline.names, dead_letter_queue_url=pipeline.outputs.dead_letter_queue_url)

    assert (result.missing, result.healed, result.kept, result.failed, result.dead_lettered) == (30, 30, 0, 0, 0)
    assert sorted(result.healed_keys) == sorted(deleted)
    assert_byte_identical(pipeline, deleted)
    after = listing(pipeline)
    assert set(after) == set(before)
    untouched = set(before) - set(deleted)
    assert {key: after[key]["ETag"] for key in untouched} == {key: before[key]["ETag"] for key in untouched}
    assert {key: after[key]["LastModified"] for key in untouched} == {
        key: before[key]["LastModified"] for key in untouched
    }, "the sweep rewrote objects that were never missing"

    again = run_sweep(pipeline.target, pipeline.names, dead_letter_queue_url=pipeline.outputs.dead_letter_queue_url)

    assert (again.missing, again.healed, again.failed) == (0, 0, 0)


@pytest.mark.usefixtures("requires_local_runtime")
def test_scheduled_sweep_heals_while_the_healer_is_down(make_pipeline):
    pipeline = make_pipeline(objects=50, sweep_every_s=1)
    assert pipeline.runtime is not None and pipeline.sweep_runtime is not None
    pipeline.runtime.stop()  # only the event-driven healer: the scheduled sweep keeps running
    deleted = victims(pipeline, 10, seed=12)
    s3 = pipeline.target.s3()
    expected = {item.key: item.sha256 for item in pipeline.seeded}

    delete_keys(s3, pipeline.names.production_bucket, deleted)

    def still_missing() -> list[str]:
        return [key for key in deleted if sha256_of(s3, pipeline.names.production_bucket, key) != expected[key]]

    for attempt in Retrying(stop=stop_after_delay(30), wait=wait_fixed(0.5), reraise=True):
        with attempt:
            left = still_missing()
            assert left == [], f"{len(left)} of 10 objects not back yet: {left[:3]}"

    assert_byte_identical(pipeline, deleted)
    pipeline.sweep_runtime.flush_logs()
    healed_by_sweep = {
        line["key"]
        for line in audit_lines(pipeline.target.logs(), pipeline.names.sweep_log_group)
        if line["event"] == SWEEP_EVENT and line["outcome"] == "healed"
    }
    assert set(deleted) <= healed_by_sweep
    healer_keys = {line["key"] for line in audit_lines(pipeline.target.logs(), pipeline.names.log_group)}
    assert not healer_keys & set(deleted), "the stopped healer must not have healed anything"
    assert pipeline.sweep_runtime.stats().succeeded >= 1


def test_sweep_cli_prints_what_it_healed(make_pipeline, emulator):
    pipeline = make_pipeline(objects=20, sweep_every_s=0)
    stop_event_healing(pipeline)
    deleted = victims(pipeline, 5, seed=13)
    delete_keys(pipeline.target.s3(), pipeline.names.production_bucket, deleted)
    command = [
        sys.executable,
        "-m",
        "provisioning",
        "sweep",
        "--endpoint-url",
        emulator.target.endpoint_url,
        "--prefix",
        pipeline.names.prefix,
    ]

    first = subprocess.run(command, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    second = subprocess.run(command, capture_output=True, text=True, timeout=120, env=dict(os.environ))

    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert (summary["missing"], summary["healed"], summary["failed"]) == (5, 5, 0)
    assert_byte_identical(pipeline, deleted)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout.strip().splitlines()[-1])["healed"] == 0
