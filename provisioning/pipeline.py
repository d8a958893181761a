"""A running pipeline: a deployed stack plus, where the backend needs it, the local runtime.

This is the one place that knows how to bring a stack up and down; the CLI, the pytest
fixtures, the chaos controls and the benchmarks all go through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
    ) -> Pipeline:
        """Deploy (idempotently), start the runtime if needed, then seed ``objects`` objects."""
        ensure_safe_target(
            target,
            [names.production_bucket, names.backup_bucket],
            allow_remote=allow_remote,
            allowed_buckets=allowed_buckets,
        )
        outputs = deploy_stack(target, names, subscribe_lambda=runs_lambda, extra_environment=healer_environment)
        pipeline = cls(target=target, names=names, outputs=outputs)
        if not runs_lambda:
            runtime = LocalLambdaRuntime(target, names.function, outputs.topic_arn)
            if max_concurrency:
                runtime.max_concurrency = max_concurrency
            pipeline.runtime = runtime.start()
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
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        if destroy:
            destroy_stack(self.target, self.names)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
