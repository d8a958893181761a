"""Lambda's asynchronous invocation model, locally: queue, concurrency, retries, destinations."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..artifact import find_artifact
from ..exceptions import ArtifactMismatch, RuntimeFailure
from ..target import AwsTarget
from .environment import ExecutionEnvironment, FunctionSpec, InvocationTimeout
from .logs import LogShipper
from .receiver import SnsReceiver, lambda_sns_event

if TYPE_CHECKING:
    from typing import Self

DEFAULT_CONCURRENCY = 4
# Lambda waits about 1 and 2 minutes between async retries; locally seconds keep tests short.
DEFAULT_RETRY_DELAYS_S = (1.0, 2.0)


@dataclass
class _Invocation:
    request_id: str
    event: Any
    received_at: float
    attempts: int = 0
    last_error: dict[str, Any] | None = None


@dataclass(frozen=True)
class RuntimeStats:
    received: int
    attempts: int
    succeeded: int
    failed_attempts: int
    dead_lettered: int
    dropped: int
    pending: int
    in_flight: int
    reserved_concurrency: int | None


class LocalLambdaRuntime:
    """Executes one deployed function for the events its SNS topic delivers.

    >>> runtime = LocalLambdaRuntime(target, "s3sh-healer", topic_arn).start()
    >>> runtime.wait_idle(30)
    >>> runtime.stop()
    """

    def __init__(
        self,
        target: AwsTarget,
        function_name: str,
        topic_arn: str | None,
        *,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S,
        config_poll_s: float = 0.5,
        schedule_every_s: float | None = None,
        function_endpoint_url: str | None = None,
    ) -> None:
        self.target = target
        self.function_name = function_name
        self.topic_arn = topic_arn
        self.max_concurrency = max_concurrency
        self.retry_delays_s = retry_delays_s
        self.config_poll_s = config_poll_s
        # Like an EventBridge schedule: a scheduled event every this many seconds (None: never).
        self.schedule_every_s = schedule_every_s
        # Where the function's own AWS calls go (a fault proxy, say); the runtime's calls do not.
        self.function_endpoint_url = function_endpoint_url
        self._lambda = target.lambda_()
        self._sqs = target.sqs()
        self._sns = target.sns()
        self._queue: list[tuple[float, int, _Invocation]] = []
        self._sequence = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._in_flight = 0
        self._reserved: int | None = None
        self._max_retries = 2
        self._on_failure_arn: str | None = None
        self._counts = dict.fromkeys(
            ("received", "attempts", "succeeded", "failed_attempts", "dead_lettered", "dropped"), 0
        )
        self._threads: list[threading.Thread] = []
        self._environments: list[ExecutionEnvironment] = []
        self._task_root: str | None = None
        self._receiver: SnsReceiver | None = None
        self._subscription_arn: str | None = None
        self._shipper: LogShipper | None = None
        self.spec: FunctionSpec | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> Self:
        self.spec = self._read_function()
        self._task_root = self._unpack(self.spec.code_sha256)
        self._shipper = LogShipper(self.target.logs(), f"/aws/lambda/{self.spec.name}")
        self._refresh_config()
        for index in range(self.max_concurrency):
            thread = threading.Thread(target=self._work, name=f"lambda-{self.function_name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        threading.Thread(target=self._poll_config, name=f"lambda-config-{self.function_name}", daemon=True).start()
        if self.schedule_every_s:
            threading.Thread(target=self._schedule, name=f"lambda-schedule-{self.function_name}", daemon=True).start()
        if self.topic_arn:
            self._receiver = SnsReceiver(self.topic_arn, self._on_notification, self._confirm).start()
            self._subscription_arn = self._sns.subscribe(
                TopicArn=self.topic_arn, Protocol="http", Endpoint=self._receiver.url, ReturnSubscriptionArn=True
            )["SubscriptionArn"]
        return self

    def stop(self) -> None:
        """Unsubscribe, stop taking events, finish what runs, and report what was still queued."""
        if self._subscription_arn:
            try:
                self._sns.unsubscribe(SubscriptionArn=self._subscription_arn)
            except Exception as exc:  # noqa: BLE001 - the topic may already be gone
                print(f"s3-self-healing runtime: unsubscribe failed: {exc}", file=sys.stderr)
            self._subscription_arn = None
        if self._receiver:
            self._receiver.stop()
            self._receiver = None
        with self._cond:
            self._stopping = True
            left = len(self._queue)
            self._cond.notify_all()
        if left:
            print(
                f"s3-self-healing runtime: stopped with {left} event(s) of {self.function_name} not yet handled",
                file=sys.stderr,
            )
        for thread in self._threads:
            thread.join(timeout=(self.spec.timeout_s if self.spec else 5) + 5)
        for environment in self._environments:
            environment.close()
        if self._shipper:
            self._shipper.flush()
            self._shipper.close()
        if self._task_root:
            shutil.rmtree(self._task_root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- public operations ------------------------------------------------------------------

    def submit(self, event: Any) -> str:
        """Queue an asynchronous invocation (what SNS or ``InvokeType=Event`` would do)."""
        invocation = _Invocation(request_id=str(uuid.uuid4()), event=event, received_at=time.time())
        with self._cond:
            self._counts["received"] += 1
            self._push(invocation, ready_at=time.monotonic())
        return invocation.request_id

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is queued or running (held events count as queued)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and self._in_flight == 0, timeout_s)

    def drop_deliveries(self, probability: float, seed: int | None = None) -> None:
        """Fault injection: lose this share of SNS deliveries after acknowledging them."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"drop probability {probability} is not between 0 and 1")
        if self._receiver is None:
            raise RuntimeFailure(f"{self.function_name} has no SNS receiver to drop deliveries from")
        self._receiver.drop_probability = probability
        if seed is not None:
            self._receiver._random.seed(seed)

    @property
    def dropped_deliveries(self) -> int:
        return self._receiver.dropped if self._receiver else 0

    def kill_environments(self) -> int:
        """Fault injection: kill every execution environment now, as a crash mid-invocation would.

        In-flight invocations fail (and are retried, as Lambda retries a crashed async invoke).
        """
        with self._cond:
            environments = [environment for environment in self._environments if environment.alive]
        for environment in environments:
            environment.kill()
        return len(environments)

    def flush_logs(self, timeout_s: float = 10.0) -> bool:
        return self._shipper.flush(timeout_s) if self._shipper else True

    def stats(self) -> RuntimeStats:
        with self._cond:
            return RuntimeStats(
                **self._counts, pending=len(self._queue), in_flight=self._in_flight, reserved_concurrency=self._reserved
            )

    # -- internals --------------------------------------------------------------------------

    def _read_function(self) -> FunctionSpec:
        try:
            config = self._lambda.get_function(FunctionName=self.function_name)["Configuration"]
        except Exception as exc:
            raise RuntimeFailure(f"cannot read function {self.function_name!r}: {exc}") from exc
        return FunctionSpec(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            handler=config["Handler"],
            timeout_s=float(config.get("Timeout", 3)),
            memory_mb=int(config.get("MemorySize", 128)),
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            code_sha256=config["CodeSha256"],
        )

    def _unpack(self, code_sha256: str) -> str:
        path = find_artifact(code_sha256)
        if path is None:
            raise ArtifactMismatch(
                f"no local artifact matches {self.function_name}'s CodeSha256 {code_sha256}: "
                "deploy the stack from this machine (python -m provisioning up) so its zip is stored"
            )
        task_root = tempfile.mkdtemp(prefix=f"s3sh-task-{self.function_name}-")
        with zipfile.ZipFile(path) as archive:
            archive.extractall(task_root)
        return task_root

    def _refresh_config(self) -> None:
        reserved = self._lambda.get_function_concurrency(FunctionName=self.function_name).get(
            "ReservedConcurrentExecutions"
        )
        invoke: dict[str, Any] = {}
        # Without an event-invoke configuration Lambda uses its defaults and has no destination.
        with contextlib.suppress(self._lambda.exceptions.ResourceNotFoundException):
            invoke = dict(self._lambda.get_function_event_invoke_config(FunctionName=self.function_name))
        with self._cond:
            changed = reserved != self._reserved
            self._reserved = reserved
            self._max_retries = int(invoke.get("MaximumRetryAttempts", 2))
            self._on_failure_arn = invoke.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if changed:
                self._cond.notify_all()

    def _poll_config(self) -> None:
        while True:
            with self._cond:
                if self._cond.wait_for(lambda: self._stopping, self.config_poll_s):
                    return
            try:
                self._refresh_config()
            except Exception as exc:  # noqa: BLE001 - keep the last known configuration
                print(f"s3-self-healing runtime: cannot refresh {self.function_name} config: {exc}", file=sys.stderr)

    def _schedule(self) -> None:
        assert self.schedule_every_s
        while True:
            with self._cond:
                if self._cond.wait_for(lambda: self._stopping, self.schedule_every_s):
                    return
            self.submit(scheduled_event(self.function_name))

    def _on_notification(self, body: dict[str, Any]) -> None:
        self.submit(lambda_sns_event(body, self._subscription_arn or f"{self.topic_arn}:local"))

    def _confirm(self, topic_arn: str, token: str) -> None:
        threading.Thread(
            target=self._sns.confirm_subscription, kwargs={"TopicArn": topic_arn, "Token": token}, daemon=True
        ).start()

    def _push(self, invocation: _Invocation, ready_at: float) -> None:
        heapq.heappush(self._queue, (ready_at, next(self._sequence), invocation))
        self._cond.notify()

    def _concurrency_limit(self) -> int:
        return self.max_concurrency if self._reserved is None else min(self.max_concurrency, self._reserved)

    def _next(self) -> _Invocation | None:
        """Block until an invocation may run (ready, and under the concurrency limit)."""
        with self._cond:
            while not self._stopping:
                if self._queue and self._in_flight < self._concurrency_limit():
                    wait = self._queue[0][0] - time.monotonic()
                    if wait <= 0:
                        invocation = heapq.heappop(self._queue)[2]
                        self._in_flight += 1
                        return invocation
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _work(self) -> None:
        environment: ExecutionEnvironment | None = None
        while (invocation := self._next()) is not None:
            try:
                if environment is None or not environment.alive:
                    environment = self._new_environment()
                reply = environment.invoke(invocation.request_id, invocation.event)
                error = (
                    None if reply.get("ok") else reply.get("error", {"errorMessage": "unknown", "errorType": "Unknown"})
                )
            except InvocationTimeout as exc:
                error = {"errorMessage": str(exc), "errorType": "Sandbox.Timedout"}
            except RuntimeFailure as exc:
                error = {"errorMessage": str(exc), "errorType": "Runtime.ExitError"}
            self._finish(invocation, error)

    def _new_environment(self) -> ExecutionEnvironment:
        assert self.spec is not None and self._task_root is not None and self._shipper is not None
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        aws = self.target.environment()
        if self.function_endpoint_url:
            aws["AWS_ENDPOINT_URL"] = self.function_endpoint_url
        environment = ExecutionEnvironment(self.spec, self._task_root, aws, stream, self._shipper.emit)
        with self._cond:
            self._environments.append(environment)
        return environment

    def _finish(self, invocation: _Invocation, error: dict[str, Any] | None) -> None:
        invocation.attempts += 1
        dead_letter = False
        with self._cond:
            self._counts["attempts"] += 1
            if error is None:
                self._counts["succeeded"] += 1
            else:
                self._counts["failed_attempts"] += 1
                invocation.last_error = error
                retries_done = invocation.attempts - 1
                if retries_done < self._max_retries and not self._stopping:
                    delay = self.retry_delays_s[min(retries_done, len(self.retry_delays_s) - 1)]
                    self._push(invocation, ready_at=time.monotonic() + delay)
                else:
                    dead_letter = True
            if not dead_letter:
                self._in_flight -= 1
                self._cond.notify_all()
        if dead_letter:
            # Still counted in flight until the record is in the queue, so wait_idle means "settled".
            self._send_to_destination(invocation)

    def _send_to_destination(self, invocation: _Invocation) -> None:
        assert self.spec is not None
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": invocation.request_id,
                "functionArn": f"{self.spec.arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": invocation.attempts,
            },
            "requestPayload": invocation.event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": invocation.last_error,
        }
        destination = self._on_failure_arn
        try:
            if not destination or destination.split(":")[2] != "sqs":
                raise RuntimeFailure(f"no SQS on-failure destination configured (got {destination!r})")
            _, _, _, _, account, queue_name = destination.split(":", 5)
            queue_url = self._sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self._sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record, default=str))
            outcome = "dead_lettered"
        except Exception as exc:  # noqa: BLE001 - never into a void: print the whole record instead
            print(
                f"s3-self-healing runtime: could not dead-letter an event of {self.function_name}: {exc}",
                file=sys.stderr,
            )
            print(json.dumps(record, default=str), file=sys.stderr)
            outcome = "dropped"
        with self._cond:
            self._counts[outcome] += 1
            self._in_flight -= 1
            self._cond.notify_all()


def scheduled_event(function_name: str) -> dict[str, Any]:
    """The event EventBridge sends a function on a schedule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "resources": [f"local-schedule:{function_name}"],
        "detail": {},
    }
