"""The loopback SNS subscriber: validates deliveries and hands them on as Lambda SNS events."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from provisioning.runtime.receiver import SnsReceiver, lambda_sns_event

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:s3sh-test-object-removed"
SUBSCRIPTION_ARN = f"{TOPIC_ARN}:0f1e2d3c-0000-4000-8000-000000000000"
S3_EVENT = json.dumps({"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"object": {"key": "a/b.txt"}}}]})


@dataclass
class Received:
    notifications: list[dict[str, Any]] = field(default_factory=list)
    confirmations: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture(scope="module")
def _shared() -> Iterator[tuple[SnsReceiver, Received]]:
    # One server for the module: stopping one takes up to serve_forever's 0.5 s poll interval.
    received = Received()
    started = SnsReceiver(
        TOPIC_ARN,
        on_notification=received.notifications.append,
        on_confirmation=lambda topic, token: received.confirmations.append((topic, token)),
    ).start()
    yield started, received
    started.stop()


@pytest.fixture
def received(_shared: tuple[SnsReceiver, Received]) -> Received:
    _, collected = _shared
    collected.notifications.clear()
    collected.confirmations.clear()
    return collected


@pytest.fixture
def receiver(_shared: tuple[SnsReceiver, Received], received: Received) -> SnsReceiver:
    server, _ = _shared
    server.rejected = 0
    return server


def post(url: str, body: bytes | dict[str, Any]) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def notification(**overrides: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC_ARN,
        "Subject": "Amazon S3 Notification",
        "Message": S3_EVENT,
        "Timestamp": "2024-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        **overrides,
    }


def test_receiver_binds_loopback_only(receiver: SnsReceiver) -> None:
    assert urlsplit(receiver.url).hostname == "127.0.0.1"
    assert receiver._server.server_address[0] == "127.0.0.1"


def test_notification_for_the_topic_is_accepted_and_handed_on(receiver: SnsReceiver, received: Received) -> None:
    body = notification()
    status, _ = post(receiver.url, body)
    assert status == 200
    assert received.notifications == [body]
    assert received.confirmations == []
    assert receiver.rejected == 0


def test_lambda_event_from_a_delivered_notification_has_the_sns_shape(
    receiver: SnsReceiver, received: Received
) -> None:
    body = notification()
    post(receiver.url, body)
    (delivered,) = received.notifications
    event = lambda_sns_event(delivered, SUBSCRIPTION_ARN)
    (record,) = event["Records"]
    assert record["EventSource"] == "aws:sns"
    assert record["EventSubscriptionArn"] == SUBSCRIPTION_ARN
    assert record["Sns"]["Message"] == body["Message"]
    assert record["Sns"]["TopicArn"] == TOPIC_ARN
    assert record["Sns"]["MessageId"] == body["MessageId"]
    assert record["Sns"]["Type"] == "Notification"
    # Lambda spells these two differently from the HTTP delivery.
    assert record["Sns"]["SigningCertUrl"] == body["SigningCertURL"]
    assert record["Sns"]["UnsubscribeUrl"] == body["UnsubscribeURL"]
    assert record["Sns"]["MessageAttributes"] == {}


def test_delivery_for_another_topic_is_forbidden(receiver: SnsReceiver, received: Received) -> None:
    status, reason = post(receiver.url, notification(TopicArn=f"{TOPIC_ARN}-other"))
    assert status == 403
    assert "other" in reason
    assert received.notifications == []
    assert receiver.rejected == 1


def test_delivery_without_topic_is_forbidden(receiver: SnsReceiver, received: Received) -> None:
    body = notification()
    del body["TopicArn"]
    status, _ = post(receiver.url, body)
    assert status == 403
    assert received.notifications == []


@pytest.mark.parametrize("raw", [b"not json", b'{"Type": ', b"[1, 2]", b'"a string"'])
def test_body_that_is_not_a_json_object_is_a_bad_request(receiver: SnsReceiver, received: Received, raw: bytes) -> None:
    status, _ = post(receiver.url, raw)
    assert status == 400
    assert received.notifications == []
    assert receiver.rejected == 1


def test_empty_body_is_a_bad_request(receiver: SnsReceiver, received: Received) -> None:
    status, _ = post(receiver.url, b"")
    assert status == 400
    assert received.notifications == []


@pytest.mark.parametrize("kind", ["Bogus", None, "notification"])
def test_unknown_message_type_is_a_bad_request(receiver: SnsReceiver, received: Received, kind: str | None) -> None:
    status, reason = post(receiver.url, notification(Type=kind))
    assert status == 400
    assert "type" in reason
    assert received.notifications == []
    assert received.confirmations == []


def test_subscription_confirmation_calls_back_with_topic_and_token(receiver: SnsReceiver, received: Received) -> None:
    body = notification(Type="SubscriptionConfirmation", Token="tok-123", SubscribeURL="https://example.invalid/")
    status, _ = post(receiver.url, body)
    assert status == 200
    assert received.confirmations == [(TOPIC_ARN, "tok-123")]
    assert received.notifications == []


def test_subscription_confirmation_without_token_is_a_bad_request(receiver: SnsReceiver, received: Received) -> None:
    body = notification(Type="SubscriptionConfirmation")
    status, _ = post(receiver.url, body)
    assert status == 400
    assert received.confirmations == []


def test_unsubscribe_confirmation_is_acknowledged_and_ignored(receiver: SnsReceiver, received: Received) -> None:
    status, _ = post(receiver.url, notification(Type="UnsubscribeConfirmation", Token="tok"))
    assert status == 200
    assert received.notifications == []
    assert received.confirmations == []


def test_receiver_keeps_serving_after_rejections(receiver: SnsReceiver, received: Received) -> None:
    assert post(receiver.url, b"junk")[0] == 400
    assert post(receiver.url, notification(TopicArn="arn:aws:sns:us-east-1:1:x"))[0] == 403
    assert post(receiver.url, notification())[0] == 200
    assert len(received.notifications) == 1
    assert receiver.rejected == 2


def test_non_numeric_content_length_is_a_bad_request(receiver: SnsReceiver, received: Received) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(receiver.url).port, timeout=5)
    try:
        connection.putrequest("POST", "/sns")
        connection.putheader("Content-Length", "twelve")
        connection.endheaders()
        connection.send(json.dumps(notification()).encode())
        response = connection.getresponse()
        assert response.status == 400
    finally:
        connection.close()
    assert received.notifications == []
    assert receiver.rejected == 1


def test_stopped_receiver_refuses_connections(received: Received) -> None:
    receiver = SnsReceiver(TOPIC_ARN, received.notifications.append, lambda *_: None).start()
    url = receiver.url
    receiver.stop()
    with pytest.raises(urllib.error.URLError):
        post(url, notification())
