"""Recovery scenarios: delete patterns at several scales, each on its own stack, judged by SLO.

Run one scale bigger with ``pytest tests/scenarios --scale 10000 -k every-object``.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from provisioning.observe import delete_keys, list_etags

from .conftest import Scenario, put_objects, seeded_object

pytestmark = [pytest.mark.e2e, pytest.mark.scenario]

SCALED_PATTERNS = ["random-subset", "whole-prefix", "every-object", "batch-delete"]


def _victims(pattern: str, keys: list[str]) -> list[str]:
    if pattern == "random-subset":
        return sorted(random.Random(11).sample(keys, max(1, len(keys) // 3)))
    if pattern == "whole-prefix":
        by_prefix: dict[str, list[str]] = {}
        for key in keys:
            by_prefix.setdefault(key.rsplit("/", 1)[0] if "/" in key else "", []).append(key)
        return max(by_prefix.values(), key=len)  # the biggest folder, wiped whole
    return keys


# 10 s, plus 50 ms for every object deleted at once (healing is throughput-bound; measured
# here at 40-90 objects/s with two scenarios sharing one emulator on two cores).
@pytest.mark.slo(p99_s=10, per_object_s=0.05)
@pytest.mark.parametrize("pattern", SCALED_PATTERNS)
def test_delete_pattern_at_scale(pattern, scale, make_pipeline, measure):
    pipeline = make_pipeline(objects=scale)
    expected = {item.key: item for item in pipeline.seeded}
    victims = _victims(pattern, sorted(expected))
    batch = pattern in {"batch-delete", "whole-prefix"}

    faulted_at = delete_keys(
        pipeline.target.s3(), pipeline.names.production_bucket, victims, batch=batch, concurrency=8
    )

    measure(Scenario(pattern, scale, pipeline, expected, faulted_at))


@pytest.mark.slo(p99_s=30)
def test_repeated_deletes_of_the_same_keys(make_pipeline, measure):
    pipeline = make_pipeline(objects=50)
    expected = {item.key: item for item in pipeline.seeded}
    victims = sorted(expected)[:10]
    s3 = pipeline.target.s3()
    faulted_at: dict[str, float] = {}
    for _ in range(3):  # the later deletes hit a missing key or an already healed copy
        for key, when in delete_keys(s3, pipeline.names.production_bucket, victims, batch=False).items():
            faulted_at.setdefault(key, when)

    measure(Scenario("repeated-deletes", 10, pipeline, expected, faulted_at))


@pytest.mark.slo(p99_s=30)
def test_delete_then_immediate_reupload_is_not_clobbered(make_pipeline, measure):
    pipeline = make_pipeline(objects=50)
    expected = {item.key: item for item in pipeline.seeded}
    s3 = pipeline.target.s3()
    reuploaded = {}
    faulted_at = {}
    for key in sorted(expected)[:25]:
        newer, body = seeded_object(key, f"newer upload of {key}".encode(), "text/plain")
        faulted_at[key] = time.time()
        s3.delete_object(Bucket=pipeline.names.production_bucket, Key=key)
        s3.put_object(Bucket=pipeline.names.production_bucket, Key=key, Body=body, ContentType="text/plain")
        reuploaded[key] = newer

    metrics = measure(Scenario("delete-then-reupload", 25, pipeline, expected, faulted_at, reuploaded))
    assert metrics["corrupted"] == 0  # a clobbered re-upload would hash to the backup, not the newer bytes


@pytest.mark.slo(p99_s=30)
def test_versioned_production_bucket_heals_delete_markers(make_pipeline, measure, emulator):
    pipeline = make_pipeline(objects=100)
    s3 = pipeline.target.s3()
    s3.put_bucket_versioning(Bucket=pipeline.names.production_bucket, VersioningConfiguration={"Status": "Enabled"})
    expected = {item.key: item for item in pipeline.seeded}
    note = ""
    if emulator.backend == "embedded":
        note = (
            "moto 5.2.5 emits no event for a delete marker; the embedded emulator is patched to send "
            "ObjectRemoved:DeleteMarkerCreated as AWS does (provisioning/emulators/moto_process.py)"
        )
    elif emulator.backend in {"moto-container", "endpoint"} and not emulator.runs_lambda:
        pytest.xfail(
            "parity gap: unpatched moto emits no event for a delete marker; only a reconciliation sweep heals it"
        )
    victims = sorted(expected)[:40]

    faulted_at = delete_keys(s3, pipeline.names.production_bucket, victims, batch=False, concurrency=8)

    measure(Scenario("versioned-delete-markers", 40, pipeline, expected, faulted_at, parity_note=note))


AWKWARD_KEYS = [
    "with space/and more spaces.txt",
    "plus+sign/a+b=c.txt",
    "percent/100% done.txt",
    "unicode/naïve café/日本語/ü.txt",
    "emoji/📦 parcel.bin",
    "long/" + "k" * 995,  # 1,000 bytes: S3's key limit is 1,024
    "nested/" * 20 + "deep.txt",
    "question?and#hash&amp.txt",
]


@pytest.mark.slo(p99_s=30)
def test_awkward_keys_come_back(make_pipeline, measure):
    pipeline = make_pipeline(objects=0)
    expected = put_objects(pipeline, [seeded_object(key, key.encode("utf-8") * 2) for key in AWKWARD_KEYS])

    faulted_at = delete_keys(pipeline.target.s3(), pipeline.names.production_bucket, sorted(expected), batch=False)

    measure(Scenario("awkward-keys", len(expected), pipeline, expected, faulted_at))


@pytest.mark.slo(p99_s=30)
def test_zero_byte_and_multi_mib_objects_come_back(make_pipeline, measure):
    pipeline = make_pipeline(objects=0)
    objects = [
        seeded_object("sizes/empty", b""),
        seeded_object("sizes/one-byte", b"x"),
        seeded_object("sizes/five-mib.bin", os.urandom(5 * 1024 * 1024)),
        # Over the 16 MiB the healer passes through itself: the server-side copy path.
        seeded_object("sizes/twenty-mib.bin", os.urandom(20 * 1024 * 1024)),
    ]
    expected = put_objects(pipeline, objects)

    faulted_at = delete_keys(pipeline.target.s3(), pipeline.names.production_bucket, sorted(expected), batch=True)

    measure(Scenario("zero-and-multi-mib", len(expected), pipeline, expected, faulted_at))


@pytest.mark.slo(p99_s=30)
def test_metadata_and_content_type_are_kept(make_pipeline, measure):
    pipeline = make_pipeline(objects=0)
    objects = [
        seeded_object(
            f"meta/{index}.json", f'{{"n": {index}}}'.encode(), "application/json", owner="ops", index=str(index)
        )
        for index in range(10)
    ]
    objects.append(seeded_object("meta/big-with-meta.bin", os.urandom(17 * 1024 * 1024), "video/mp4", owner="media"))
    expected = put_objects(pipeline, objects)
    s3 = pipeline.target.s3()

    faulted_at = delete_keys(s3, pipeline.names.production_bucket, sorted(expected), batch=True)

    measure(Scenario("metadata-kept", len(expected), pipeline, expected, faulted_at))
    for key, item in expected.items():
        head = s3.head_object(Bucket=pipeline.names.production_bucket, Key=key)
        assert (head["ContentType"], head["Metadata"]) == (item.content_type, item.metadata), key
    assert set(list_etags(s3, pipeline.names.production_bucket)) == set(expected)
