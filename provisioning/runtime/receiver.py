"""An SNS HTTP(S) subscriber on loopback that turns deliveries into Lambda SNS events.

SNS (and moto, synchronously inside the S3 delete request) waits for the answer, so the
receiver only validates and queues, then answers at once; the work happens afterwards.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY_BYTES = 1024 * 1024  # SNS messages are at most 256 KiB; anything far larger is not SNS


def lambda_sns_event(notification: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """The event Lambda builds from one SNS notification."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": notification.get("Type", "Notification"),
                    "MessageId": notification.get("MessageId"),
                    "TopicArn": notification.get("TopicArn"),
                    "Subject": notification.get("Subject"),
                    "Message": notification.get("Message"),
                    "Timestamp": notification.get("Timestamp"),
                    "SignatureVersion": notification.get("SignatureVersion"),
                    "Signature": notification.get("Signature"),
                    "SigningCertUrl": notification.get("SigningCertURL"),
                    "UnsubscribeUrl": notification.get("UnsubscribeURL"),
                    "MessageAttributes": notification.get("MessageAttributes", {}),
                },
            }
        ]
    }


class SnsReceiver:
    """HTTP server on 127.0.0.1 accepting SNS deliveries for one topic.

    ``on_notification(body)`` gets every Notification; ``on_confirmation(topic_arn, token)``
    every SubscriptionConfirmation (moto sends none; LocalStack and AWS do).
    """

    def __init__(
        self,
        topic_arn: str,
        on_notification: Callable[[dict[str, Any]], None],
        on_confirmation: Callable[[str, str], None],
    ) -> None:
        self.topic_arn = topic_arn
        self.rejected = 0
        self.dropped = 0
        # Fault injection: the share of notifications acknowledged and then lost, as an SNS
        # delivery that fails for good would be. 0 in normal operation.
        self.drop_probability = 0.0
        self._random = random.Random()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status, reason = receiver._handle(self)
                self.send_response(status)
                self.send_header("Content-Length", str(len(reason)))
                self.end_headers()
                self.wfile.write(reason.encode())

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request lines
                return

        self._on_notification = on_notification
        self._on_confirmation = on_confirmation
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sns-receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/sns"

    def start(self) -> SnsReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handle(self, request: BaseHTTPRequestHandler) -> tuple[int, str]:
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            return self._reject(f"Content-Length {request.headers.get('Content-Length')!r} is not a number")
        if length <= 0 or length > MAX_BODY_BYTES:
            return self._reject(f"body length {length} is not a plausible SNS message")
        raw = request.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return self._reject(f"body is not JSON: {exc}")
        if not isinstance(body, dict):
            return self._reject("body is not a JSON object")
        if body.get("TopicArn") != self.topic_arn:
            return self._reject(f"delivery for topic {body.get('TopicArn')!r}, expected {self.topic_arn!r}", 403)
        kind = body.get("Type")
        if kind == "Notification":
            if self.drop_probability and self._random.random() < self.drop_probability:
                self.dropped += 1
                return 200, "dropped (fault injection)"
            self._on_notification(body)
            return 200, "queued"
        if kind == "SubscriptionConfirmation" and isinstance(body.get("Token"), str):
            self._on_confirmation(self.topic_arn, body["Token"])
            return 200, "confirming"
        if kind == "UnsubscribeConfirmation":
            return 200, "ok"
        return self._reject(f"unknown SNS message type {kind!r}")

    def _reject(self, reason: str, status: int = 400) -> tuple[int, str]:
        self.rejected += 1
        print(f"s3-self-healing runtime: rejected an SNS delivery: {reason}", file=sys.stderr)
        return status, reason
