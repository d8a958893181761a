"""A running pipeline: a deployed stack plus, where the backend needs it, the local runtime.

This is the one place that knows how to bring a stack up and down; the CLI, the pytest
fixtures, the chaos controls and the benchmarks all go through it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .exceptions import ConfigError
from .runtime import LocalLambdaRuntime
from .safety import ensure_safe_target
from .seed import SeededObject, seed_objects
from .stack import StackNames, StackOutputs, deploy_stack, destroy_stack
from .target import AwsTarget

if TYPE_CHECKING:
    from typing import Self


@dataclass
class Pipeline:
    """A deployed stack on ``target``; ``runtime`` is set when the backend cannot run Lambda."""

    target: AwsTarget
    names: StackNames
    outputs: StackOutputs
    runtime: LocalLambdaRuntime | None = None
    sweep_runtime: LocalLambdaRuntime | None = None
    seeded: list[SeededObject] = field(default_factory=list)

    @classmethod
    def up(
        cls,
        target: AwsTarget,
        names: StackNames,
        *,
        runs_lambda: bool,
        objects: int = 0,
        seed: int = 0,
        allow_remote: bool | None = None,
        allowed_buckets: list[str] | None = None,
        max_concurrency: int | None = None,
        healer_environment: dict[str, str] | None = None,
        sweep_every_s: float | None = None,
        function_endpoint_url: str | None = None,
    ) -> Pipeline:
        """Deploy (idempotently), start the runtime if needed, then seed ``objects`` objects.

        ``sweep_every_s`` overrides the sweep schedule for the local runtime (0: no scheduled
        sweep; default: the EventBridge rule's rate, or S3SH_SWEEP_INTERVAL_S). With
        ``function_endpoint_url`` the functions' own AWS calls go there (a fault proxy).
        """
        ensure_safe_target(
            target,
            [names.production_bucket, names.backup_bucket],
            allow_remote=allow_remote,
            allowed_buckets=allowed_buckets,
        )
        outputs = deploy_stack(target, names, subscribe_lambda=runs_lambda, extra_environment=healer_environment)
        pipeline = cls(target=target, names=names, outputs=outputs)
        if not runs_lambda:
            runtime = LocalLambdaRuntime(
                target, names.function, outputs.topic_arn, function_endpoint_url=function_endpoint_url
            )
            if max_concurrency:
                runtime.max_concurrency = max_concurrency
            pipeline.runtime = runtime.start()
            interval = sweep_interval(target, names) if sweep_every_s is None else sweep_every_s
            pipeline.sweep_runtime = LocalLambdaRuntime(
                target,
                names.sweep_function,
                None,
                max_concurrency=1,
                schedule_every_s=interval or None,
                function_endpoint_url=function_endpoint_url,
            ).start()
        if objects:
            try:
                pipeline.seeded = seed_objects(
                    target.s3(), names.production_bucket, names.backup_bucket, objects, seed=seed
                )
            except Exception:
                pipeline.down()
                raise
        return pipeline

    def down(self, *, destroy: bool = True) -> None:
        """Stop the runtime, then remove the stack (unless ``destroy`` is False)."""
        for runtime in (self.runtime, self.sweep_runtime):
            if runtime is not None:
                runtime.stop()
        self.runtime = self.sweep_runtime = None
        if destroy:
            destroy_stack(self.target, self.names)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


SWEEP_INTERVAL_VAR = "S3SH_SWEEP_INTERVAL_S"
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def sweep_interval(target: AwsTarget, names: StackNames) -> float:
    """Seconds between scheduled sweeps: S3SH_SWEEP_INTERVAL_S, else the EventBridge rule's rate."""
    configured = os.environ.get(SWEEP_INTERVAL_VAR)
    if configured:
        try:
            return float(configured)
        except ValueError:
            raise ConfigError(f"{SWEEP_INTERVAL_VAR}={configured!r} is not a number of seconds") from None
    expression = target.client("events").describe_rule(Name=names.sweep_schedule).get("ScheduleExpression", "")
    match = _RATE.fullmatch(expression)
    if not match:
        raise ConfigError(f"cannot run sweep schedule {expression!r} locally: only rate(N minutes|hours|days)")
    return int(match.group(1)) * _UNIT_S[match.group(2).rstrip("s")]
