"""Fault rules: validation, matching, classifying requests botocore builds, and errors botocore parses.

No network: a ``before-send`` hook takes each request botocore prepared and either stops it
(classification) or answers it with the proxy's injected error (parsing, retry decisions).
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import ExponentialBackoff

from provisioning.exceptions import ConfigError
from provisioning.faults import (
    ERROR_FAULTS,
    FAULTS,
    FaultRule,
    FaultRuleSet,
    RequestClassifier,
    RequestInfo,
    classify,
    error_response,
)

ENDPOINT = "http://127.0.0.1:9"  # never contacted: every request is answered by the hook
QUEUE_URL = f"{ENDPOINT}/123456789012/s3sh-queue"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:s3sh-topic"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:s3sh-healer"


class _Stopped(Exception):
    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("stopped before sending")
        self.request = request


class _Stream:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


@cache
def _session() -> boto3.Session:
    """One session: it caches the service models, so each fresh client is cheap."""
    return boto3.Session(aws_access_key_id="AKIDTEST", aws_secret_access_key="testing", region_name="us-east-1")


def _client(service: str, attempts: int = 1, **config: Any) -> Any:
    retries = {"mode": "standard", "total_max_attempts": attempts}
    return _session().client(service, endpoint_url=ENDPOINT, config=Config(retries=retries, **config))


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    position = body.tell()
    data: bytes = body.read()
    body.seek(position)
    return data


def classify_prepared(request: AWSPreparedRequest) -> RequestInfo:
    """What the proxy would see: path and query apart, str headers, the raw body."""
    parts = urlsplit(request.url)
    headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
    return classify(request.method, parts.path, parts.query, headers, _body_bytes(request.body))


def prepared(service: str, call: Callable[[Any], Any]) -> AWSPreparedRequest:
    client = _client(service)

    def stop(request: AWSPreparedRequest, **_: Any) -> None:
        raise _Stopped(request)

    client.meta.events.register("before-send", stop)
    with pytest.raises(_Stopped) as stopped:
        call(client)
    return stopped.value.request


# --- FaultRule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fault": "explode"}, "unknown fault 'explode'"),
        ({"fault": "slowdown", "probability": -0.1}, "outside [0, 1]"),
        ({"fault": "slowdown", "probability": 1.5}, "outside [0, 1]"),
        ({"fault": "drop", "latency_s": -1.0}, "is negative"),
        ({"fault": "latency"}, "latency_s > 0"),
    ],
)
def test_invalid_rules_are_refused_with_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as raised:
        FaultRule(**kwargs)
    assert "\n" not in str(raised.value)


def test_every_fault_kind_builds() -> None:
    for fault in FAULTS:
        assert FaultRule(fault, latency_s=0.1).fault == fault
    assert set(ERROR_FAULTS) == set(FAULTS) - {"latency", "drop"}


def test_rule_round_trips_through_a_dict() -> None:
    rule = FaultRule("throttling", service="s3", operation="PutObject", bucket="b1", probability=0.5, name="t")
    assert FaultRule.from_dict(rule.to_dict()) == rule


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fault": "drop", "colour": "red"}, "unknown fault rule field"),
        ({"service": "s3"}, "needs a 'fault'"),
        ({"fault": "drop", "probability": "high"}, "must be a number"),
        ({"fault": "drop", "probability": True}, "must be a number"),
        ({"fault": "drop", "service": 3}, "must be a string or null"),
        ({"fault": "drop", "probability": None}, "cannot be null"),
    ],
)
def test_rule_from_bad_dict_is_a_config_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FaultRule.from_dict(data)


PUT_IN_B1 = RequestInfo("s3", "PutObject", "b1", "s3")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (FaultRule("slowdown"), True),
        (FaultRule("slowdown", service="s3"), True),
        (FaultRule("slowdown", service="sqs"), False),
        (FaultRule("slowdown", operation="PutObject"), True),
        (FaultRule("slowdown", operation="GetObject"), False),
        (FaultRule("slowdown", bucket="b1"), True),
        (FaultRule("slowdown", bucket="b2"), False),
        (FaultRule("slowdown", service="s3", operation="PutObject", bucket="b1"), True),
        (FaultRule("slowdown", service="s3", operation="PutObject", bucket="b2"), False),
        (FaultRule("slowdown", probability=0.0), False),
    ],
)
def test_every_set_selector_must_equal_the_request(rule: FaultRule, expected: bool) -> None:
    assert rule.matches(PUT_IN_B1) is expected


def test_bucket_selector_only_matches_s3() -> None:
    rule = FaultRule("throttling", bucket="b1")
    assert not rule.matches(RequestInfo("sqs", "SendMessage", "b1", "json"))


def test_expired_rules_stop_matching() -> None:
    rule = FaultRule("drop", until=1000.0)
    assert rule.matches(PUT_IN_B1, now=999.0)
    assert not rule.matches(PUT_IN_B1, now=1000.0)
    assert FaultRule("drop").lasting(60).active()
    assert not FaultRule("drop").lasting(-1).active()


def test_probability_draws_are_reproducible_with_a_seed() -> None:
    rule = FaultRule("slowdown", probability=0.3)

    def hits(seed: int) -> list[bool]:
        rng = random.Random(seed)
        return [rule.matches(PUT_IN_B1, rng=rng) for _ in range(1000)]

    assert hits(7) == hits(7)
    assert 200 < sum(hits(7)) < 400


def test_rule_set_applies_latencies_then_the_first_terminal_fault() -> None:
    rules = FaultRuleSet()
    slow = rules.add(FaultRule("latency", latency_s=0.1))
    elsewhere = rules.add(FaultRule("drop", service="sqs"))
    denied = rules.add(FaultRule("access-denied", name="deny"))
    rules.add(FaultRule("internal-error"))
    assert [rule_id for rule_id, _ in rules.select(PUT_IN_B1)] == [slow, denied]
    assert denied.startswith("deny-")
    assert len({slow, elsewhere, denied}) == 3
    assert list(rules.rules()) == [slow, elsewhere, denied, *list(rules.rules())[3:]]
    assert rules.remove(denied) is True
    assert rules.remove(denied) is False
    assert [rule.fault for _, rule in rules.select(PUT_IN_B1)] == ["latency", "internal-error"]
    assert rules.clear() == 3
    assert rules.select(PUT_IN_B1) == []


def test_rule_set_drops_expired_rules() -> None:
    rules = FaultRuleSet()
    rules.add(FaultRule("drop", until=1000.0))
    forever = rules.add(FaultRule("slowdown", service="sqs"))
    assert len(rules.rules(now=999.0)) == 2
    assert [rule.fault for _, rule in rules.select(PUT_IN_B1, now=999.0)] == ["drop"]
    assert rules.select(PUT_IN_B1, now=1000.0) == []
    assert list(rules.rules(now=999.0)) == [forever]  # gone for good, not just inactive


def test_seeded_rule_sets_draw_the_same_sequence() -> None:
    def run() -> list[int]:
        rules = FaultRuleSet()
        rules.seed(42)
        rules.add(FaultRule("slowdown", probability=0.2))
        return [len(rules.select(PUT_IN_B1)) for _ in range(200)]

    assert run() == run()


# --- classification ----------------------------------------------------------------------

S3_CALLS: list[tuple[str, Callable[[Any], Any], str | None]] = [
    ("GetObject", lambda s3: s3.get_object(Bucket="b1", Key="a b/c+d.txt"), "b1"),
    ("HeadObject", lambda s3: s3.head_object(Bucket="b1", Key="k"), "b1"),
    ("PutObject", lambda s3: s3.put_object(Bucket="b1", Key="dir/k%1.txt", Body=b"hello"), "b1"),
    ("PutObject", lambda s3: s3.put_object(Bucket="b1", Key="k", Body=io.BytesIO(b"hello")), "b1"),
    ("CopyObject", lambda s3: s3.copy_object(Bucket="b1", Key="k", CopySource={"Bucket": "b2", "Key": "x y"}), "b1"),
    ("DeleteObject", lambda s3: s3.delete_object(Bucket="b1", Key="k", VersionId="v1"), "b1"),
    ("DeleteObjects", lambda s3: s3.delete_objects(Bucket="b1", Delete={"Objects": [{"Key": "k"}]}), "b1"),
    ("ListObjectsV2", lambda s3: s3.list_objects_v2(Bucket="b1", Prefix="p/"), "b1"),
    ("ListObjectVersions", lambda s3: s3.list_object_versions(Bucket="b1", Prefix="k"), "b1"),
    ("GetObjectTagging", lambda s3: s3.get_object_tagging(Bucket="b1", Key="k"), "b1"),
    (
        "PutObjectTagging",
        lambda s3: s3.put_object_tagging(Bucket="b1", Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}),
        "b1",
    ),
    ("ListObjects", lambda s3: s3.list_objects(Bucket="b1"), "b1"),
    ("CreateBucket", lambda s3: s3.create_bucket(Bucket="b1"), "b1"),
    ("DeleteBucket", lambda s3: s3.delete_bucket(Bucket="b1"), "b1"),
    ("HeadBucket", lambda s3: s3.head_bucket(Bucket="b1"), "b1"),
    ("ListBuckets", lambda s3: s3.list_buckets(), None),
    ("GetBucketVersioning", lambda s3: s3.get_bucket_versioning(Bucket="b1"), "b1"),
    (
        "PutBucketVersioning",
        lambda s3: s3.put_bucket_versioning(Bucket="b1", VersioningConfiguration={"Status": "Enabled"}),
        "b1",
    ),
    ("GetBucketNotificationConfiguration", lambda s3: s3.get_bucket_notification_configuration(Bucket="b1"), "b1"),
    ("CreateMultipartUpload", lambda s3: s3.create_multipart_upload(Bucket="b1", Key="k"), "b1"),
    ("UploadPart", lambda s3: s3.upload_part(Bucket="b1", Key="k", UploadId="u", PartNumber=1, Body=b"x"), "b1"),
    (
        "UploadPartCopy",
        lambda s3: s3.upload_part_copy(Bucket="b1", Key="k", UploadId="u", PartNumber=1, CopySource="b2/k"),
        "b1",
    ),
    ("AbortMultipartUpload", lambda s3: s3.abort_multipart_upload(Bucket="b1", Key="k", UploadId="u"), "b1"),
    ("GET object?torrent", lambda s3: s3.get_object_torrent(Bucket="b1", Key="k"), "b1"),
]


@pytest.mark.parametrize(
    ("operation", "call", "bucket"), S3_CALLS, ids=[f"{op}-{i}" for i, (op, _, _) in enumerate(S3_CALLS)]
)
def test_s3_requests_are_named_like_the_api(operation: str, call: Callable[[Any], Any], bucket: str | None) -> None:
    info = classify_prepared(prepared("s3", call))
    assert info == RequestInfo("s3", operation, bucket, "s3")


def test_s3_keys_are_url_decoded_path_style() -> None:
    request = prepared("s3", lambda s3: s3.get_object(Bucket="b1", Key="a b/c+d%e.txt"))
    assert urlsplit(request.url).path == "/b1/a%20b/c%2Bd%25e.txt"  # botocore addresses 127.0.0.1 path-style
    assert RequestClassifier._s3_path(urlsplit(request.url).path) == ("b1", "a b/c+d%e.txt")


@pytest.mark.parametrize("signature_version", ["s3v4", None])
def test_presigned_urls_are_classified_from_the_query(signature_version: str | None) -> None:
    """SigV4 names the service in X-Amz-Credential; botocore's default S3 presign is still SigV2."""
    s3 = _client("s3", signature_version=signature_version)
    parts = urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": "b1", "Key": "k"}))
    assert ("X-Amz-Credential" in parts.query) is (signature_version == "s3v4")
    assert classify("GET", parts.path, parts.query, {}) == RequestInfo("s3", "GetObject", "b1", "s3")


OTHER_CALLS: list[tuple[str, Callable[[Any], Any], RequestInfo]] = [
    ("sqs", lambda c: c.send_message(QueueUrl=QUEUE_URL, MessageBody="x"), RequestInfo("sqs", "SendMessage")),
    ("sqs", lambda c: c.receive_message(QueueUrl=QUEUE_URL), RequestInfo("sqs", "ReceiveMessage")),
    ("sns", lambda c: c.publish(TopicArn=TOPIC_ARN, Message="x"), RequestInfo("sns", "Publish")),
    ("sns", lambda c: c.list_topics(), RequestInfo("sns", "ListTopics")),
    (
        "logs",
        lambda c: c.put_log_events(logGroupName="g", logStreamName="s", logEvents=[{"timestamp": 1, "message": "m"}]),
        RequestInfo("logs", "PutLogEvents"),
    ),
    ("logs", lambda c: c.describe_log_groups(), RequestInfo("logs", "DescribeLogGroups")),
    ("lambda", lambda c: c.invoke(FunctionName="s3sh-healer", Payload=b"{}"), RequestInfo("lambda", "Invoke")),
    ("lambda", lambda c: c.get_function(FunctionName=FUNCTION_ARN), RequestInfo("lambda", "GetFunction")),
    (
        "lambda",
        lambda c: c.get_function_configuration(FunctionName="f"),
        RequestInfo("lambda", "GetFunctionConfiguration"),
    ),
    (
        "lambda",
        lambda c: c.put_function_concurrency(FunctionName="f", ReservedConcurrentExecutions=0),
        RequestInfo("lambda", "PutFunctionConcurrency"),
    ),
    ("lambda", lambda c: c.list_functions(), RequestInfo("lambda", "ListFunctions")),
    (
        "lambda",
        lambda c: c.update_function_code(FunctionName="f", ZipFile=b"PK"),
        RequestInfo("lambda", "UpdateFunctionCode"),
    ),
    ("sts", lambda c: c.get_caller_identity(), RequestInfo("sts", "GetCallerIdentity")),
    ("iam", lambda c: c.get_role(RoleName="r"), RequestInfo("iam", "GetRole")),
]


@pytest.mark.parametrize(
    ("service", "call", "expected"), OTHER_CALLS, ids=[f"{s}-{e.operation}" for s, _, e in OTHER_CALLS]
)
def test_other_services_are_named_by_scope_target_action_or_route(
    service: str, call: Callable[[Any], Any], expected: RequestInfo
) -> None:
    info = classify_prepared(prepared(service, call))
    assert (info.service, info.operation, info.bucket) == (expected.service, expected.operation, None)


def test_error_protocol_follows_the_request() -> None:
    assert classify_prepared(prepared("sqs", lambda c: c.list_queues())).protocol == "json"  # botocore ≥ 1.34.x
    assert classify_prepared(prepared("sns", lambda c: c.list_topics())).protocol == "query"
    assert classify_prepared(prepared("logs", lambda c: c.describe_log_groups())).protocol == "json"
    assert classify_prepared(prepared("lambda", lambda c: c.list_functions())).protocol == "json"


def test_sqs_query_protocol_is_named_from_the_form_body() -> None:
    headers = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20261204/us-east-1/sqs/aws4_request, SignedHeaders=host",
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    }
    body = b"Action=SendMessage&Version=2012-11-05&QueueUrl=x&MessageBody=y"
    assert classify("POST", "/", "", headers, body) == RequestInfo("sqs", "SendMessage", None, "query")
    assert classify("GET", "/", "Action=ListQueues", headers).operation == "ListQueues"


def test_unsigned_requests_have_no_service() -> None:
    assert classify("GET", "/b1/k", "", {"Host": "127.0.0.1"}) == RequestInfo(None, None, None, "query")


# --- injected errors as botocore sees them -----------------------------------------------


def _answering(client: Any, fault: str, attempts: list[RequestInfo]) -> Any:
    """Answer every request the way the proxy would for ``fault``."""

    def answer(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        info = classify_prepared(request)
        attempts.append(info)
        error = error_response(fault, info)
        body = b"" if request.method == "HEAD" else error.body
        return AWSResponse(request.url, error.status, error.headers, _Stream(body))

    client.meta.events.register("before-send", answer)
    return client


CALLS_BY_SERVICE: dict[str, Callable[[Any], Any]] = {
    "s3": lambda c: c.get_object(Bucket="b1", Key="k"),
    "s3-put": lambda c: c.put_object(Bucket="b1", Key="k", Body=b"x"),
    "sqs": lambda c: c.send_message(QueueUrl=QUEUE_URL, MessageBody="x"),
    "sns": lambda c: c.publish(TopicArn=TOPIC_ARN, Message="x"),
    "logs": lambda c: c.describe_log_groups(),
    "lambda": lambda c: c.invoke(FunctionName="f", Payload=b"{}"),
    "iam": lambda c: c.get_role(RoleName="r"),
    "sts": lambda c: c.get_caller_identity(),
}


@pytest.mark.parametrize("fault", sorted(ERROR_FAULTS))
@pytest.mark.parametrize("service", sorted(CALLS_BY_SERVICE))
def test_injected_errors_parse_to_the_intended_code(service: str, fault: str) -> None:
    client = _answering(_client(service.split("-")[0]), fault, [])
    with pytest.raises(ClientError) as raised:
        CALLS_BY_SERVICE[service](client)
    error = raised.value.response["Error"]
    assert error["Code"] == ERROR_FAULTS[fault].code
    assert "injected fault" in error["Message"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == ERROR_FAULTS[fault].status


def test_head_errors_carry_only_the_status() -> None:
    """HEAD answers have no body, so botocore names the error after the status code (as with AWS)."""
    client = _answering(_client("s3"), "slowdown", [])
    with pytest.raises(ClientError) as raised:
        client.head_object(Bucket="b1", Key="k")
    assert raised.value.response["Error"]["Code"] == "503"


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize(
    ("fault", "retried"),
    [("slowdown", True), ("throttling", True), ("internal-error", True), ("access-denied", False)],
)
@pytest.mark.parametrize("service", ["s3", "sqs", "sns", "logs", "lambda"])
def test_standard_retry_mode_retries_all_but_access_denied(service: str, fault: str, retried: bool) -> None:
    attempts: list[RequestInfo] = []
    client = _answering(_client(service, attempts=3), fault, attempts)
    with pytest.raises(ClientError):
        CALLS_BY_SERVICE[service](client)
    assert len(attempts) == (3 if retried else 1)


def test_retries_max_attempts_counts_retries_not_attempts(no_backoff: None) -> None:
    """botocore's ``Config(retries={"max_attempts": 1})`` still makes two attempts; total_max_attempts=1 makes one."""
    for retries, expected in (({"max_attempts": 1}, 2), ({"total_max_attempts": 1}, 1)):
        attempts: list[RequestInfo] = []
        config = Config(retries={"mode": "standard", **retries})
        client = _answering(_session().client("s3", endpoint_url=ENDPOINT, config=config), "slowdown", attempts)
        with pytest.raises(ClientError):
            client.list_buckets()
        assert len(attempts) == expected
