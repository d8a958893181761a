"""On-demand repairs from the harness: run the sweep, redrive the dead-letter queue.

The sweep here is the deployed function's own code (``healer.sweep``) run with the harness's
clients, so ``python -m provisioning sweep`` and the ``run_sweep`` chaos action behave exactly
like the scheduled function.
"""

from __future__ import annotations

import json
from typing import Any

from healer.config import HealerConfig
from healer.sweep import DEFAULT_MAX_RESTORES_PER_S, SweepResult, sweep

from .stack import StackNames
from .target import AwsTarget


def run_sweep(
    target: AwsTarget,
    names: StackNames,
    *,
    dead_letter_queue_url: str | None = None,
    max_restores_per_s: float = DEFAULT_MAX_RESTORES_PER_S,
) -> SweepResult:
    """Sweep the stack once: restore every key the backup has and production lacks."""
    config = HealerConfig(names.production_bucket, names.backup_bucket, dead_letter_queue_url)
    return sweep(target.s3(), config, max_restores_per_s=max_restores_per_s, sqs=target.sqs(), request_id="on-demand")


def redrive(target: AwsTarget, queue_url: str, topic_arn: str) -> dict[str, int]:
    """Re-publish every dead-lettered S3 event to the topic, then delete it from the queue.

    Records whose payload is not an S3 event (a rejected, malformed message) stay in the queue:
    redriving them would only fail again, and they are evidence.
    """
    sqs, sns = target.sqs(), target.sns()
    redriven = kept = 0
    seen: set[str] = set()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
        ).get("Messages", [])
        fresh = [message for message in messages if message["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            payloads = s3_messages(json.loads(message["Body"]))
            if not payloads:
                kept += 1
                continue
            for payload in payloads:
                sns.publish(TopicArn=topic_arn, Message=payload)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            redriven += 1
    return {"redriven": redriven, "left_in_queue": kept}


def s3_messages(record: dict[str, Any]) -> list[str]:
    """The S3 event messages (SNS ``Message`` strings) inside a dead-letter record."""
    try:
        records = record["requestPayload"]["Records"]
        return [entry["Sns"]["Message"] for entry in records if isinstance(entry.get("Sns", {}).get("Message"), str)]
    except (KeyError, TypeError, AttributeError):
        return []
