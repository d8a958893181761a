"""The fault proxy in front of a real moto server: passthrough, every fault kind, scoping, control API."""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, HTTPClientError
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from provisioning.emulators import EmbeddedEmulator
from provisioning.exceptions import ConfigError
from provisioning.faults import FaultProxy, FaultProxyClient, FaultRule
from provisioning.target import AwsTarget

pytestmark = pytest.mark.e2e

NO_RETRIES = {"mode": "standard", "total_max_attempts": 1}  # retries={"max_attempts": 1} would still retry once


def _eventually(predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    return retry(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(0.05),
        retry=retry_if_result(lambda ok: not ok),
        retry_error_callback=lambda state: False,
    )(predicate)()


@pytest.fixture(scope="module")
def upstream() -> Iterator[AwsTarget]:
    with EmbeddedEmulator() as emulator:
        yield emulator.target


@pytest.fixture(scope="module")
def _shared_proxy(upstream: AwsTarget) -> Iterator[FaultProxy]:
    assert upstream.endpoint_url is not None
    with FaultProxy(upstream.endpoint_url) as started:
        yield started


@pytest.fixture
def proxy(_shared_proxy: FaultProxy) -> FaultProxy:
    _shared_proxy.clear_rules()
    return _shared_proxy


@pytest.fixture
def via(proxy: FaultProxy, upstream: AwsTarget) -> AwsTarget:
    """Clients through the proxy."""
    return AwsTarget(endpoint_url=proxy.url, region=upstream.region)


@pytest.fixture
def bucket(upstream: AwsTarget) -> str:
    name = f"s3sh-fp-{uuid.uuid4().hex[:10]}"
    upstream.s3().create_bucket(Bucket=name)
    return name


def _no_retries(target: AwsTarget, service: str) -> Any:
    return target.client(service, retries=NO_RETRIES)


def _error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def _succeeds(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ClientError:
        return False
    return True


# --- passthrough -------------------------------------------------------------------------


def test_s3_passes_through_byte_identically(via: AwsTarget, upstream: AwsTarget, bucket: str) -> None:
    s3, direct = via.s3(), upstream.s3()
    payload = os.urandom(3 * 1024 * 1024 + 17)  # over 1 MiB: botocore sends Expect: 100-continue
    odd_key = "dir one/ä+b%c?d#e.bin"
    s3.put_object(Bucket=bucket, Key=odd_key, Body=payload, Metadata={"origin": "proxy"})
    s3.put_object(Bucket=bucket, Key="small.txt", Body=b"hello")

    fetched = s3.get_object(Bucket=bucket, Key=odd_key)
    assert fetched["Body"].read() == payload
    assert direct.get_object(Bucket=bucket, Key=odd_key)["Body"].read() == payload
    assert fetched["Metadata"] == {"origin": "proxy"}
    head = s3.head_object(Bucket=bucket, Key=odd_key)
    assert head["ContentLength"] == len(payload)
    assert head["ETag"] == direct.head_object(Bucket=bucket, Key=odd_key)["ETag"]

    s3.copy_object(Bucket=bucket, Key="copy.bin", CopySource={"Bucket": bucket, "Key": odd_key})
    assert direct.get_object(Bucket=bucket, Key="copy.bin")["Body"].read() == payload

    def listing(client: Any) -> list[tuple[str, str, int]]:
        return [(o["Key"], o["ETag"], o["Size"]) for o in client.list_objects_v2(Bucket=bucket)["Contents"]]

    assert listing(s3) == listing(direct)
    assert [k for k, _, _ in listing(s3)] == sorted(["copy.bin", odd_key, "small.txt"])

    s3.delete_object(Bucket=bucket, Key="small.txt")
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": odd_key}, {"Key": "copy.bin"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == sorted(["copy.bin", odd_key])
    assert direct.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_raw_responses_match_the_emulators(proxy: FaultProxy, upstream: AwsTarget, bucket: str) -> None:
    """Same status, body and end-to-end headers whether asked directly or through the proxy."""
    upstream.s3().put_object(Bucket=bucket, Key="k.txt", Body=b"raw bytes", ContentType="text/x-test")
    assert upstream.endpoint_url is not None

    def get(url: str) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        try:
            conn.request("GET", f"/{bucket}/k.txt", headers={"Authorization": _s3_authorization()})
            response = conn.getresponse()
            keep = {"content-type", "content-length", "etag", "last-modified"}
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders() if k.lower() in keep},
                response.read(),
            )
        finally:
            conn.close()

    assert get(proxy.url) == get(upstream.endpoint_url)


def _s3_authorization() -> str:
    scope = time.strftime("%Y%m%d", time.gmtime())
    return f"AWS4-HMAC-SHA256 Credential=testing/{scope}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"


def test_chunked_request_bodies_are_reframed(proxy: FaultProxy, upstream: AwsTarget, bucket: str) -> None:
    payload = os.urandom(200_000)
    request = AWSRequest(
        "PUT", f"{proxy.url}/{bucket}/chunked.bin", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    SigV4Auth(Credentials("testing", "testing"), "s3", "us-east-1").add_auth(request)
    parts = urlsplit(proxy.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        pieces = (payload[i : i + 65_000] for i in range(0, len(payload), 65_000))
        conn.request(
            "PUT", f"/{bucket}/chunked.bin", body=pieces, headers=dict(request.headers.items()), encode_chunked=True
        )
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert upstream.s3().get_object(Bucket=bucket, Key="chunked.bin")["Body"].read() == payload


def test_concurrent_clients_through_one_proxy(via: AwsTarget, upstream: AwsTarget, bucket: str) -> None:
    s3 = via.s3()
    bodies = {f"c/{i:03d}": os.urandom(1000 + i) for i in range(64)}

    def round_trip(key: str) -> bool:
        s3.put_object(Bucket=bucket, Key=key, Body=bodies[key])
        return bool(s3.get_object(Bucket=bucket, Key=key)["Body"].read() == bodies[key])

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert all(pool.map(round_trip, bodies))
    assert upstream.s3().list_objects_v2(Bucket=bucket)["KeyCount"] == len(bodies)


def test_bad_request_framing_is_refused(proxy: FaultProxy) -> None:
    parts = urlsplit(proxy.url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=5) as raw:
        raw.sendall(b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n")
        assert raw.recv(64).startswith(b"HTTP/1.1 400 ")


def test_sqs_sns_and_logs_pass_through(via: AwsTarget, proxy: FaultProxy) -> None:
    suffix = uuid.uuid4().hex[:8]
    sqs = via.sqs()
    queue_url = sqs.create_queue(QueueName=f"s3sh-fp-{suffix}")["QueueUrl"]
    assert urlsplit(queue_url).port == urlsplit(proxy.url).port  # moto builds it from the forwarded Host
    sqs.send_message(QueueUrl=queue_url, MessageBody="through the proxy ✓")
    received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in received] == ["through the proxy ✓"]

    sns = via.sns()
    topic = sns.create_topic(Name=f"s3sh-fp-{suffix}")["TopicArn"]
    assert sns.publish(TopicArn=topic, Message="hello")["MessageId"]

    logs = via.logs()
    group = f"/s3sh/fp-{suffix}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(
        logGroupName=group, logStreamName="s", logEvents=[{"timestamp": int(time.time() * 1000), "message": "m1"}]
    )
    events = logs.get_log_events(logGroupName=group, logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["m1"]
    assert proxy.stats()["forwarded"] > 0


# --- faults ------------------------------------------------------------------------------

EXPECTED_CODES = {
    "slowdown": ("SlowDown", 503),
    "throttling": ("ThrottlingException", 400),
    "internal-error": ("InternalError", 500),
    "access-denied": ("AccessDenied", 403),
}


@pytest.mark.parametrize("fault", sorted(EXPECTED_CODES))
def test_each_error_fault_reaches_botocore_as_its_code(
    fault: str, proxy: FaultProxy, via: AwsTarget, upstream: AwsTarget, bucket: str
) -> None:
    upstream.s3().put_object(Bucket=bucket, Key="k", Body=b"x")
    queue_url = upstream.sqs().create_queue(QueueName=f"s3sh-fp-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    topic = upstream.sns().create_topic(Name=f"s3sh-fp-{uuid.uuid4().hex[:8]}")["TopicArn"]
    s3, sqs, sns, logs = (_no_retries(via, name) for name in ("s3", "sqs", "sns", "logs"))
    rule_id = proxy.add_rule(FaultRule(fault))
    calls: dict[str, Callable[[], Any]] = {
        "GetObject": lambda: s3.get_object(Bucket=bucket, Key="k"),
        "PutObject": lambda: s3.put_object(Bucket=bucket, Key="k2", Body=os.urandom(2 * 1024 * 1024)),
        "SendMessage": lambda: sqs.send_message(QueueUrl=queue_url, MessageBody="x"),
        "Publish": lambda: sns.publish(TopicArn=topic, Message="x"),
        "DescribeLogGroups": lambda: logs.describe_log_groups(),
    }
    code, status = EXPECTED_CODES[fault]
    for operation, call in calls.items():
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == code, operation
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status, operation
    assert proxy.stats()["rules"][rule_id] == len(calls)  # one attempt each: retries are off
    proxy.clear_rules()
    assert upstream.s3().list_objects_v2(Bucket=bucket)["KeyCount"] == 1  # the faulted PutObject never arrived


def test_drop_closes_the_connection_without_an_answer(proxy: FaultProxy, via: AwsTarget, bucket: str) -> None:
    s3 = _no_retries(via, "s3")
    rule_id = proxy.add_rule(FaultRule("drop", operation="ListObjectsV2"))
    with pytest.raises(HTTPClientError, match="Connection was closed"):
        s3.list_objects_v2(Bucket=bucket)
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200  # other calls go on
    assert proxy.stats()["rules"][rule_id] == 1


def test_probability_injects_about_that_share(upstream: AwsTarget) -> None:
    assert upstream.endpoint_url is not None
    with FaultProxy(upstream.endpoint_url).with_seed(20261204) as seeded:
        s3 = _no_retries(AwsTarget(endpoint_url=seeded.url), "s3")
        rule_id = seeded.add_rule(FaultRule("internal-error", probability=0.2))
        failed = sum(not _succeeds(s3.list_buckets) for _ in range(200))
        assert 20 <= failed <= 70  # 10%..35%: the seed makes it exact, the bounds survive any seed
        assert seeded.stats()["rules"][rule_id] == failed
        assert seeded.stats()["forwarded"] == 200 - failed


def test_until_ends_injection(proxy: FaultProxy, via: AwsTarget, bucket: str) -> None:
    s3 = _no_retries(via, "s3")
    rule_id = proxy.add_rule(FaultRule("slowdown", bucket=bucket).lasting(1.0))
    assert _error_code(lambda: s3.list_objects_v2(Bucket=bucket)) == "SlowDown"
    assert _eventually(lambda: _succeeds(lambda: s3.list_objects_v2(Bucket=bucket)))
    fired = proxy.stats()["rules"][rule_id]
    assert all(_succeeds(lambda: s3.list_objects_v2(Bucket=bucket)) for _ in range(5))
    assert proxy.stats()["rules"][rule_id] == fired
    assert rule_id not in proxy.rules()  # expired rules are dropped
    assert rule_id in proxy.stats()["rules"]  # their counts stay

    proxy.add_rule(FaultRule("slowdown", until=time.time() - 1))
    assert _succeeds(lambda: s3.list_objects_v2(Bucket=bucket))


def test_bucket_operation_and_service_scoping(proxy: FaultProxy, via: AwsTarget, upstream: AwsTarget) -> None:
    hit, spared = f"s3sh-fp-hit-{uuid.uuid4().hex[:8]}", f"s3sh-fp-spared-{uuid.uuid4().hex[:8]}"
    for name in (hit, spared):
        upstream.s3().create_bucket(Bucket=name)
        upstream.s3().put_object(Bucket=name, Key="k", Body=b"x")
    s3, sqs = _no_retries(via, "s3"), _no_retries(via, "sqs")

    proxy.add_rule(FaultRule("access-denied", bucket=hit))
    assert _error_code(lambda: s3.get_object(Bucket=hit, Key="k")) == "AccessDenied"
    assert _succeeds(lambda: s3.get_object(Bucket=spared, Key="k"))
    assert _succeeds(lambda: sqs.list_queues())
    proxy.clear_rules()

    proxy.add_rule(FaultRule("throttling", service="s3", operation="PutObject"))
    assert _error_code(lambda: s3.put_object(Bucket=spared, Key="k", Body=b"y")) == "ThrottlingException"
    assert _succeeds(lambda: s3.get_object(Bucket=spared, Key="k"))
    assert _succeeds(lambda: s3.copy_object(Bucket=spared, Key="k2", CopySource={"Bucket": hit, "Key": "k"}))
    proxy.clear_rules()

    proxy.add_rule(FaultRule("internal-error", service="sqs", operation="SendMessage"))
    queue_url = sqs.create_queue(QueueName=f"s3sh-fp-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    assert _error_code(lambda: sqs.send_message(QueueUrl=queue_url, MessageBody="x")) == "InternalError"
    assert _succeeds(lambda: s3.list_buckets())


def test_latency_delays_by_at_least_the_configured_time(proxy: FaultProxy, via: AwsTarget, bucket: str) -> None:
    delay = 0.3
    s3 = _no_retries(via, "s3")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")

    def timed() -> float:
        started = time.perf_counter()
        s3.head_object(Bucket=bucket, Key="k")
        return time.perf_counter() - started

    baseline = statistics.median(timed() for _ in range(5))
    proxy.add_rule(FaultRule("latency", operation="HeadObject", latency_s=delay))
    delayed = [timed() for _ in range(3)]
    assert min(delayed) - baseline >= 0.9 * delay

    proxy.add_rule(FaultRule("slowdown", operation="HeadObject"))  # latency rules stack in front of errors
    started = time.perf_counter()
    assert _error_code(lambda: s3.head_object(Bucket=bucket, Key="k")) == "503"  # HEAD: no body, status only
    assert time.perf_counter() - started - baseline >= 0.9 * delay
    assert proxy.stats()["injected"]["latency"] >= 4


def test_unreachable_upstream_answers_502(upstream: AwsTarget) -> None:
    with FaultProxy("http://127.0.0.1:9") as dead:  # discard port: nothing listens
        s3 = _no_retries(AwsTarget(endpoint_url=dead.url), "s3")
        assert _error_code(s3.list_buckets) == "502"
        assert dead.stats()["upstream_errors"] == 1


# --- control API -------------------------------------------------------------------------


def test_control_api_round_trips_from_another_client(proxy: FaultProxy, via: AwsTarget, bucket: str) -> None:
    client = FaultProxyClient(proxy.url)
    s3 = _no_retries(via, "s3")
    rule = FaultRule("slowdown", service="s3", operation="ListObjectsV2", bucket=bucket, name="ctl")
    rule_id = client.add_rule(rule)
    assert client.rules() == {rule_id: rule} == proxy.rules()
    assert _error_code(lambda: s3.list_objects_v2(Bucket=bucket)) == "SlowDown"
    stats = client.stats()
    assert stats["rules"][rule_id] == 1
    assert stats["injected"]["slowdown"] >= 1

    assert client.remove_rule(rule_id) is True
    assert client.remove_rule(rule_id) is False
    assert _succeeds(lambda: s3.list_objects_v2(Bucket=bucket))

    client.add_rule(FaultRule("drop", service="sqs"))
    client.add_rule(FaultRule("latency", latency_s=0.01, until=time.time() + 60))
    assert len(client.rules()) == 2
    assert client.clear_rules() == 2
    assert client.rules() == {}


def test_control_api_refuses_bad_rules(proxy: FaultProxy) -> None:
    client = FaultProxyClient(proxy.url)
    with pytest.raises(ConfigError, match="unknown fault 'explode'"):
        client._call("POST", "rules", {"fault": "explode"})
    with pytest.raises(ConfigError, match="probability"):
        client._call("POST", "rules", {"fault": "drop", "probability": 2})
    with pytest.raises(ConfigError, match="no control route"):
        client._call("GET", "nothing-here")
    assert proxy.rules() == {}


def test_proxy_and_client_refuse_non_loopback_urls() -> None:
    with pytest.raises(ConfigError, match="not an http:// loopback URL"):
        FaultProxy("http://10.0.0.1:4566")
    with pytest.raises(ConfigError, match="not an http:// loopback URL"):
        FaultProxyClient("https://example.com")
    with pytest.raises(ConfigError, match="no fault proxy answers"):
        FaultProxyClient("http://127.0.0.1:9", timeout=2).stats()
