"""The local Lambda runtime behaves like Lambda's asynchronous invocation: code identity, concurrency, retries."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from healer.deadletter import s3_event_for
from provisioning.exceptions import ArtifactMismatch
from provisioning.runtime import LocalLambdaRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("requires_local_runtime")]


def _eventually(predicate, timeout_s: float = 15.0) -> bool:
    return retry(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(0.05),
        retry=retry_if_result(lambda ok: not ok),
        retry_error_callback=lambda state: False,
    )(predicate)()


def test_runtime_refuses_code_that_was_not_deployed_from_here(make_pipeline):
    pipeline = make_pipeline(objects=0)
    foreign = io.BytesIO()
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("healer/handler.py", "def lambda_handler(event, context):\n    return 'not ours'\n")
    pipeline.target.lambda_().update_function_code(FunctionName=pipeline.names.function, ZipFile=foreign.getvalue())

    with pytest.raises(ArtifactMismatch, match="CodeSha256"):
        LocalLambdaRuntime(pipeline.target, pipeline.names.function, None).start()


def test_function_environment_comes_from_the_deployed_configuration(make_pipeline):
    pipeline = make_pipeline(objects=0)
    assert pipeline.runtime is not None
    spec = pipeline.runtime.spec
    assert spec is not None
    assert spec.environment == {
        "PRODUCTION_BUCKET": pipeline.names.production_bucket,
        "BACKUP_BUCKET": pipeline.names.backup_bucket,
        "DEAD_LETTER_QUEUE_URL": pipeline.outputs.dead_letter_queue_url,
    }
    assert spec.handler == "healer.handler.lambda_handler"


def test_reserved_concurrency_zero_holds_events_until_released(make_pipeline):
    pipeline = make_pipeline(objects=3)
    runtime = pipeline.runtime
    assert runtime is not None
    lam, s3 = pipeline.target.lambda_(), pipeline.target.s3()
    lam.put_function_concurrency(FunctionName=pipeline.names.function, ReservedConcurrentExecutions=0)
    assert _eventually(lambda: runtime.stats().reserved_concurrency == 0)

    for item in pipeline.seeded:
        s3.delete_object(Bucket=pipeline.names.production_bucket, Key=item.key)
    assert _eventually(lambda: runtime.stats().pending == 3)
    assert runtime.stats().attempts == 0  # held, like Lambda's async queue while throttled

    lam.delete_function_concurrency(FunctionName=pipeline.names.function)
    assert runtime.wait_idle(30)
    assert runtime.stats().succeeded == 3
    listed = s3.list_objects_v2(Bucket=pipeline.names.production_bucket).get("Contents", [])
    assert {item["Key"] for item in listed} == {item.key for item in pipeline.seeded}


def test_a_failing_event_is_tried_three_times_then_dead_lettered(make_pipeline):
    pipeline = make_pipeline(objects=0)
    runtime = pipeline.runtime
    assert runtime is not None
    # A key the backup never had: the healer fails the invocation, Lambda retries it twice.
    failing_event = s3_event_for(pipeline.names.production_bucket, "never/backed up.txt")

    runtime.submit(failing_event)

    assert runtime.wait_idle(30)
    stats = runtime.stats()
    assert (stats.attempts, stats.failed_attempts, stats.dead_lettered) == (3, 3, 1)
    sqs = pipeline.target.sqs()
    body = sqs.receive_message(QueueUrl=pipeline.outputs.dead_letter_queue_url, WaitTimeSeconds=1)["Messages"][0][
        "Body"
    ]
    record = json.loads(body)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"] == failing_event
    assert "BackupObjectMissing" in record["responsePayload"]["errorMessage"]


def test_an_unparseable_record_is_dead_lettered_at_once_by_the_function(make_pipeline):
    pipeline = make_pipeline(objects=0)
    runtime = pipeline.runtime
    assert runtime is not None
    bad_event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "this is not JSON"}}]}

    runtime.submit(bad_event)

    assert runtime.wait_idle(30)
    stats = runtime.stats()
    assert (stats.attempts, stats.failed_attempts, stats.dead_lettered) == (1, 0, 0)  # no pointless retries
    sqs = pipeline.target.sqs()
    body = sqs.receive_message(QueueUrl=pipeline.outputs.dead_letter_queue_url, WaitTimeSeconds=1)["Messages"][0][
        "Body"
    ]
    record = json.loads(body)
    assert record["requestContext"]["condition"] == "DeadLetteredByFunction"
    assert record["requestPayload"]["rejected"] == "this is not JSON"
    assert "not JSON" in record["responsePayload"]["errorMessage"]


def test_test_event_is_skipped_without_error(make_pipeline):
    pipeline = make_pipeline(objects=0)
    runtime = pipeline.runtime
    assert runtime is not None
    message = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": pipeline.names.production_bucket})
    runtime.submit({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": message}}]})
    assert runtime.wait_idle(30)
    assert (runtime.stats().succeeded, runtime.stats().failed_attempts) == (1, 0)
