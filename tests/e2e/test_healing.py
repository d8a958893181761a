"""End to end: deletes in the production bucket, over HTTP to the emulator, healed by the deployed healer."""

from __future__ import annotations

import json
import random
from urllib.parse import unquote_plus

import pytest
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from provisioning.observe import audit_lines, dead_letters, delete_keys, wait_for_heal
from provisioning.pipeline import Pipeline

pytestmark = pytest.mark.e2e


def _expected(pipeline: Pipeline) -> dict[str, object]:
    return {item.key: item for item in pipeline.seeded}


@pytest.mark.parametrize(
    ("objects", "deleted", "batch", "timeout_s"),
    [(10, 1, False, 30), (100, 100, False, 60), (1000, 1000, True, 180)],
    ids=["one-object", "100-objects-one-by-one", "1000-objects-in-one-batch"],
)
def test_deleted_objects_come_back_byte_identical(make_pipeline, objects, deleted, batch, timeout_s):
    pipeline = make_pipeline(objects=objects)
    s3 = pipeline.target.s3()
    victims = random.Random(7).sample(sorted(_expected(pipeline)), deleted)

    sent_at = delete_keys(s3, pipeline.names.production_bucket, victims, batch=batch)
    report = wait_for_heal(s3, pipeline.names.production_bucket, _expected(pipeline), sent_at, timeout_s=timeout_s)

    assert report.lost == () and report.corrupted == (), report.summary()
    assert report.healed == deleted
    print(f"\n{deleted} deleted: {report.summary()}")


def test_content_type_and_metadata_survive_the_restore(make_pipeline):
    pipeline = make_pipeline(objects=5)
    s3 = pipeline.target.s3()
    item = pipeline.seeded[0]
    sent_at = delete_keys(s3, pipeline.names.production_bucket, [item.key])
    report = wait_for_heal(s3, pipeline.names.production_bucket, _expected(pipeline), sent_at, timeout_s=30)
    assert report.healed == 1
    head = s3.head_object(Bucket=pipeline.names.production_bucket, Key=item.key)
    assert head["ContentType"] == item.content_type
    assert head["Metadata"] == item.metadata


@pytest.mark.parametrize(
    "key",
    ["dir/a b+c ü.txt", "100% sure?.txt", "x" * 1000, "日本/データ+.bin"],
    ids=["space-plus-umlaut", "percent", "1000-byte", "cjk"],
)
def test_awkward_keys_are_decoded_and_restored(make_pipeline, key):
    pipeline = make_pipeline(objects=0)
    s3 = pipeline.target.s3()
    body = key.encode("utf-8") * 3
    for bucket in (pipeline.names.backup_bucket, pipeline.names.production_bucket):
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    s3.delete_object(Bucket=pipeline.names.production_bucket, Key=key)

    restored = _wait_for_body(s3, pipeline.names.production_bucket, key)
    assert restored == body


@pytest.mark.usefixtures("requires_local_runtime")
def test_reuploaded_object_is_not_clobbered(make_pipeline):
    pipeline = make_pipeline(objects=0)
    s3 = pipeline.target.s3()
    key = "reports/latest.csv"
    s3.put_object(Bucket=pipeline.names.backup_bucket, Key=key, Body=b"old backup copy")
    s3.put_object(Bucket=pipeline.names.production_bucket, Key=key, Body=b"old backup copy")
    assert pipeline.runtime is not None
    # Hold the healer so the re-upload deterministically lands before it runs.
    pipeline.target.lambda_().put_function_concurrency(
        FunctionName=pipeline.names.function, ReservedConcurrentExecutions=0
    )
    _wait_until(lambda: pipeline.runtime.stats().reserved_concurrency == 0)

    s3.delete_object(Bucket=pipeline.names.production_bucket, Key=key)
    s3.put_object(Bucket=pipeline.names.production_bucket, Key=key, Body=b"newer upload")
    pipeline.target.lambda_().delete_function_concurrency(FunctionName=pipeline.names.function)

    assert pipeline.runtime.wait_idle(30)
    assert pipeline.runtime.stats().succeeded >= 1
    assert s3.get_object(Bucket=pipeline.names.production_bucket, Key=key)["Body"].read() == b"newer upload"
    pipeline.runtime.flush_logs()
    outcomes = [
        line["outcome"] for line in audit_lines(pipeline.target.logs(), pipeline.names.log_group) if line["key"] == key
    ]
    assert outcomes == ["kept-existing"]


def test_key_missing_from_backup_ends_in_the_dead_letter_queue(make_pipeline):
    pipeline = make_pipeline(objects=0)
    s3 = pipeline.target.s3()
    key = "only-in-production.txt"
    s3.put_object(Bucket=pipeline.names.production_bucket, Key=key, Body=b"never backed up")

    s3.delete_object(Bucket=pipeline.names.production_bucket, Key=key)

    records = _wait_for_dead_letters(pipeline, 1)
    assert len(records) == 1
    record = records[0]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3  # first try + Lambda's 2 retries
    assert record["responsePayload"]["errorType"] == "HealingFailed"
    assert key in record["responsePayload"]["errorMessage"]
    message = json.loads(record["requestPayload"]["Records"][0]["Sns"]["Message"])
    assert unquote_plus(message["Records"][0]["s3"]["object"]["key"]) == key  # the whole event is kept for a redrive
    if pipeline.runtime is not None:
        stats = pipeline.runtime.stats()
        assert (stats.dead_lettered, stats.dropped) == (1, 0)


def test_audit_lines_reach_the_log_group(make_pipeline):
    pipeline = make_pipeline(objects=20)
    s3 = pipeline.target.s3()
    victims = [item.key for item in pipeline.seeded[:5]]
    sent_at = delete_keys(s3, pipeline.names.production_bucket, victims)
    report = wait_for_heal(s3, pipeline.names.production_bucket, _expected(pipeline), sent_at, timeout_s=30)
    assert report.healed == 5

    lines = _wait_for_audit(
        pipeline, lambda found: {line["key"] for line in found if line["outcome"] == "healed"} >= set(victims)
    )
    healed = [line for line in lines if line["outcome"] == "healed"]
    assert {line["key"] for line in healed} == set(victims)
    for line in healed:
        assert line["action"] == "restored"
        assert line["event"] == "ObjectRemoved:Delete"
        assert isinstance(line["time_to_heal_ms"], int) and line["time_to_heal_ms"] >= 0
        assert line["request_id"]


# -- polling helpers (deadline-bound, never a bare sleep) ------------------------------------


def _wait_until(predicate, timeout_s: float = 10.0) -> None:
    retry(
        stop=stop_after_delay(timeout_s), wait=wait_fixed(0.05), retry=retry_if_result(lambda ok: not ok), reraise=True
    )(predicate)()
    assert predicate()


def _wait_for_body(s3, bucket: str, key: str, timeout_s: float = 30.0) -> bytes | None:
    def read() -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    return retry(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(0.05),
        retry=retry_if_result(lambda body: body is None),
        retry_error_callback=lambda state: None,
    )(read)()


def _wait_for_dead_letters(pipeline: Pipeline, count: int, timeout_s: float = 30.0) -> list[dict]:
    sqs = pipeline.target.sqs()
    collected: list[dict] = []

    def read() -> list[dict]:
        collected.extend(dead_letters(sqs, pipeline.outputs.dead_letter_queue_url))
        return collected

    return retry(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(0.2),
        retry=retry_if_result(lambda found: len(found) < count),
        retry_error_callback=lambda state: collected,
    )(read)()


def _wait_for_audit(pipeline: Pipeline, done, timeout_s: float = 30.0) -> list[dict]:
    logs = pipeline.target.logs()
    return retry(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(0.2),
        retry=retry_if_result(lambda found: not done(found)),
        retry_error_callback=lambda state: state.outcome.result(),
    )(lambda: audit_lines(logs, pipeline.names.log_group))()
