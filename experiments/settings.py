"""The experiment's configuration, read once into a typed, validated object.

Chaos Toolkit hands every activity the same ``configuration`` mapping: keys from the experiment
file, overridden by ``--var``/``--var-file``, completed by the environment control with the
outputs of the stack it deployed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioning.exceptions import ConfigError
from provisioning.safety import ensure_safe_target
from provisioning.target import DEFAULT_REGION, AwsTarget

DEFAULT_MAX_KEYS_PER_ACTION = 10_000
STACK_KEYS = (
    "production_bucket",
    "backup_bucket",
    "topic_arn",
    "function_name",
    "log_group",
    "dead_letter_queue_url",
)


@dataclass(frozen=True)
class ExperimentConfig:
    endpoint_url: str | None
    region: str
    production_bucket: str
    backup_bucket: str
    topic_arn: str
    function_name: str
    log_group: str
    dead_letter_queue_url: str
    max_keys_per_action: int
    allow_remote: bool
    allowed_buckets: tuple[str, ...]

    @property
    def target(self) -> AwsTarget:
        if self.endpoint_url is None:
            return AwsTarget(endpoint_url=None, region=self.region, access_key_id=None, secret_access_key=None)
        return AwsTarget(endpoint_url=self.endpoint_url, region=self.region)

    def ensure_safe(self) -> None:
        """Refuse destructive work off loopback unless opted in with these buckets named."""
        ensure_safe_target(
            self.target,
            [self.production_bucket, self.backup_bucket],
            allow_remote=self.allow_remote,
            allowed_buckets=self.allowed_buckets,
        )

    def cap(self, count: int, action: str) -> None:
        if count > self.max_keys_per_action:
            raise ConfigError(
                f"{action} would touch {count} keys, over max_keys_per_action={self.max_keys_per_action} "
                "(raise it with --var max_keys_per_action:int=N if you mean it)"
            )


def load(configuration: Mapping[str, Any] | None) -> ExperimentConfig:
    """Validate the configuration; one clear ConfigError names what is missing or wrong."""
    config = dict(configuration or {})
    missing = [key for key in STACK_KEYS if not config.get(key)]
    if missing:
        raise ConfigError(
            f"configuration is missing {', '.join(missing)}: add the environment control "
            "(experiments.controls.environment) or give them with --var"
        )
    return ExperimentConfig(
        endpoint_url=str(config["endpoint_url"]) if config.get("endpoint_url") else None,
        region=str(config.get("region") or DEFAULT_REGION),
        production_bucket=str(config["production_bucket"]),
        backup_bucket=str(config["backup_bucket"]),
        topic_arn=str(config["topic_arn"]),
        function_name=str(config["function_name"]),
        log_group=str(config["log_group"]),
        dead_letter_queue_url=str(config["dead_letter_queue_url"]),
        max_keys_per_action=positive_int(config, "max_keys_per_action", DEFAULT_MAX_KEYS_PER_ACTION),
        allow_remote=truthy(config.get("allow_remote")),
        allowed_buckets=tuple(b.strip() for b in str(config.get("allowed_buckets") or "").split(",") if b.strip()),
    )


def positive_int(config: Mapping[str, Any], key: str, default: int) -> int:
    raw = config.get(key, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"configuration {key}={raw!r} is not a whole number") from None
    if value < 0:
        raise ConfigError(f"configuration {key}={value} must not be negative")
    return value


def positive_float(config: Mapping[str, Any], key: str, default: float) -> float:
    raw = config.get(key, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"configuration {key}={raw!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"configuration {key}={value} must be positive")
    return value


def truthy(value: object) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes"}
