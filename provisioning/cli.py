"""``python -m provisioning up|down``: bring the pipeline up on an emulator, or remove a stack."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
from botocore.exceptions import ClientError

from . import reconcile
from .emulators import CHOICES, EMULATOR_VAR, Emulator, EndpointEmulator, RealAws, create_emulator
from .exceptions import S3SelfHealingError, StackError
from .pipeline import Pipeline
from .reconcile import run_sweep
from .safety import ensure_safe_target
from .seed import DEFAULT_OBJECTS
from .stack import StackNames, destroy_stack
from .stack.deploy import find_topic_arn
from .target import DEFAULT_REGION, AwsTarget

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(command: F) -> F:
    """Known failures become one ``error:`` line and exit code 1, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except S3SelfHealingError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _emulator(name: str, endpoint_url: str | None, region: str, names: StackNames, allow_remote: bool) -> Emulator:
    """The configured backend, with the safety check done before it sends a single request."""
    emulator = create_emulator(name, region=region)
    buckets = [names.production_bucket, names.backup_bucket]
    named = buckets if allow_remote else []
    if isinstance(emulator, EndpointEmulator):
        if endpoint_url:
            emulator.with_endpoint_url(endpoint_url)
        if emulator.endpoint_url:
            ensure_safe_target(
                AwsTarget(endpoint_url=emulator.endpoint_url), buckets, allow_remote=allow_remote, allowed_buckets=named
            )
        emulator.with_allow_remote(allow_remote)
    elif endpoint_url and name != "auto":
        raise click.UsageError("--endpoint-url goes with --emulator endpoint")
    if isinstance(emulator, RealAws):
        ensure_safe_target(AwsTarget(endpoint_url=None), buckets, allow_remote=allow_remote, allowed_buckets=named)
        emulator.with_allow_remote(allow_remote)
    return emulator


def _explicit_buckets(allow_remote: bool, production_bucket: str | None, backup_bucket: str | None) -> None:
    if allow_remote and not (production_bucket and backup_bucket):
        raise click.UsageError("--allow-remote needs --production-bucket and --backup-bucket: name what may be touched")


endpoint_option = click.option(
    "--endpoint-url", envvar="AWS_ENDPOINT_URL", required=True, help="URL of the running emulator."
)
region_option = click.option(
    "--region", default=DEFAULT_REGION, show_default=True, envvar="AWS_REGION", help="AWS region."
)
prefix_option = click.option(
    "--prefix", default="s3sh", show_default=True, help="Stack prefix; every resource name derives from it."
)
remote_options = [
    click.option(
        "--allow-remote", is_flag=True, envvar="S3SH_ALLOW_REMOTE", help="Permit a non-loopback endpoint or real AWS."
    ),
    click.option("--production-bucket", help="Production bucket name (required with --allow-remote)."),
    click.option("--backup-bucket", help="Backup bucket name (required with --allow-remote)."),
]


def _with_remote_options(command: F) -> F:
    for option in reversed(remote_options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Provision the self-healing S3 pipeline on an emulator (or, with opt-in, on AWS)."""


@main.command()
@click.option(
    "--emulator",
    type=click.Choice((*CHOICES, "aws")),
    default="auto",
    show_default=True,
    envvar=EMULATOR_VAR,
    help="Backend: auto picks localstack when Docker answers, else embedded.",
)
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="With --emulator endpoint: URL of a running emulator.")
@region_option
@prefix_option
@click.option(
    "--objects", type=click.IntRange(min=0), default=DEFAULT_OBJECTS, show_default=True, help="Objects to seed."
)
@click.option(
    "--seed", "seed_value", type=int, default=0, show_default=True, help="Random seed for the seeded objects."
)
@click.option("--json", "as_json", is_flag=True, help="Print the stack outputs as one JSON object.")
@click.option("--keep", is_flag=True, help="On exit, leave the stack deployed (endpoint backends).")
@_with_remote_options
@_one_line_errors
def up(
    emulator: str,
    endpoint_url: str | None,
    region: str,
    prefix: str,
    objects: int,
    seed_value: int,
    as_json: bool,
    keep: bool,
    allow_remote: bool,
    production_bucket: str | None,
    backup_bucket: str | None,
) -> None:
    """Start the emulator if needed, deploy, seed, print the outputs; run until interrupted."""
    started = time.monotonic()
    _explicit_buckets(allow_remote, production_bucket, backup_bucket)
    names = StackNames.from_prefix(prefix, production_bucket=production_bucket, backup_bucket=backup_bucket)
    backend = _emulator(emulator, endpoint_url, region, names, allow_remote)
    stop = _stop_on_signals()
    backend.start()
    try:
        pipeline = Pipeline.up(
            backend.target,
            names,
            runs_lambda=backend.runs_lambda,
            objects=objects,
            seed=seed_value,
            allow_remote=allow_remote,
            allowed_buckets=[names.production_bucket, names.backup_bucket],
        )
        try:
            ready_s = time.monotonic() - started
            if as_json:
                click.echo(pipeline.outputs.to_json())
            else:
                _print_human(pipeline, backend, ready_s)
            sys.stdout.flush()
            stop.wait()
        finally:
            owns_stack = backend.name in {"endpoint", "aws"}
            pipeline.down(destroy=owns_stack and not keep)
    finally:
        backend.stop()


def _print_human(pipeline: Pipeline, backend: Emulator, ready_s: float) -> None:
    click.echo(f"s3-self-healing pipeline ready in {ready_s:.1f}s on the {backend.name} backend", err=True)
    for key, value in pipeline.outputs.to_dict().items():
        click.echo(f"  {key:<22} {value}")
    click.echo(f"  {'seeded_objects':<22} {len(pipeline.seeded)}")
    healer = "the local Lambda runtime" if pipeline.runtime else "the backend's Lambda service"
    click.echo(
        f"The healer runs in {healer}. Delete objects from the production bucket and watch them return.", err=True
    )
    click.echo("Press Ctrl-C to stop.", err=True)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


@main.command()
@endpoint_option
@region_option
@prefix_option
@_with_remote_options
@_one_line_errors
def down(
    endpoint_url: str,
    region: str,
    prefix: str,
    allow_remote: bool,
    production_bucket: str | None,
    backup_bucket: str | None,
) -> None:
    """Remove a stack from a running (endpoint) emulator."""
    _explicit_buckets(allow_remote, production_bucket, backup_bucket)
    names = StackNames.from_prefix(prefix, production_bucket=production_bucket, backup_bucket=backup_bucket)
    backend = _emulator("endpoint", endpoint_url, region, names, allow_remote).start()
    destroy_stack(backend.target, names)
    click.echo(f"stack {prefix!r} removed from {endpoint_url}", err=True)


def _stack_target(
    endpoint_url: str,
    region: str,
    prefix: str,
    allow_remote: bool,
    production_bucket: str | None,
    backup_bucket: str | None,
) -> tuple[AwsTarget, StackNames]:
    _explicit_buckets(allow_remote, production_bucket, backup_bucket)
    names = StackNames.from_prefix(prefix, production_bucket=production_bucket, backup_bucket=backup_bucket)
    backend = _emulator("endpoint", endpoint_url, region, names, allow_remote).start()
    return backend.target, names


def _queue_url(target: AwsTarget, names: StackNames) -> str:
    try:
        return str(target.sqs().get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"])
    except ClientError as exc:
        raise StackError(f"stack {names.prefix!r} has no dead-letter queue {names.dead_letter_queue!r}: {exc}") from exc


@main.command()
@endpoint_option
@region_option
@prefix_option
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=50.0,
    show_default=True,
    help="Most restores per second.",
)
@_with_remote_options
@_one_line_errors
def sweep(
    endpoint_url: str,
    region: str,
    prefix: str,
    rate: float,
    allow_remote: bool,
    production_bucket: str | None,
    backup_bucket: str | None,
) -> None:
    """Run the reconciliation sweep once: heal every key the backup has and production lacks."""
    target, names = _stack_target(endpoint_url, region, prefix, allow_remote, production_bucket, backup_bucket)
    queue_url = _queue_url(target, names)
    result = run_sweep(target, names, dead_letter_queue_url=queue_url, max_restores_per_s=rate)
    click.echo(json.dumps(result.as_dict()))


@main.command()
@endpoint_option
@region_option
@prefix_option
@_with_remote_options
@_one_line_errors
def redrive(
    endpoint_url: str,
    region: str,
    prefix: str,
    allow_remote: bool,
    production_bucket: str | None,
    backup_bucket: str | None,
) -> None:
    """Re-feed the dead-letter queue's S3 events to the healer (through the topic)."""
    target, names = _stack_target(endpoint_url, region, prefix, allow_remote, production_bucket, backup_bucket)
    queue_url = _queue_url(target, names)
    topic_arn = find_topic_arn(target.sns(), names)
    if topic_arn is None:
        raise StackError(f"stack {prefix!r} has no topic {names.topic!r} at {endpoint_url}: nothing to redrive into")
    click.echo(json.dumps(reconcile.redrive(target, queue_url, topic_arn)))
