"""Send what the function cannot fix to the dead-letter queue, in Lambda's destination format.

Records in the queue look like Lambda's on-failure destination records, so one redrive handles
both: whole invocations Lambda gave up on, and single records the function dead-lettered itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus


def s3_removed_message(bucket: str, key: str, event_name: str = "ObjectRemoved:Delete") -> dict[str, Any]:
    """An S3 notification for one removed key, as S3 publishes it to SNS (key URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventTime": _now(),
                "eventName": event_name,
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key)}},
            }
        ]
    }


def s3_event_for(bucket: str, key: str, event_name: str = "ObjectRemoved:Delete") -> dict[str, Any]:
    """A Lambda SNS event wrapping one S3 record, as a redrive would re-publish it."""
    message = json.dumps(s3_removed_message(bucket, key, event_name))
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": message}}]}


def dead_letter(
    sqs: Any, queue_url: str, payload: Any, error_type: str, error_message: str, request_id: str | None
) -> None:
    """Put one record in the dead-letter queue (raises if SQS refuses: the caller must not lose it)."""
    record = {
        "version": "1.0",
        "timestamp": _now(),
        "requestContext": {"requestId": request_id, "condition": "DeadLetteredByFunction", "approximateInvokeCount": 1},
        "requestPayload": payload,
        "responseContext": {"functionError": "Handled"},
        "responsePayload": {"errorType": error_type, "errorMessage": error_message},
    }
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record, default=str))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
