"""An emulator that is already running somewhere, reached at AWS_ENDPOINT_URL."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import TYPE_CHECKING

from ..exceptions import ConfigError, UnsafeTargetError
from ..safety import ALLOW_REMOTE_VAR, remote_opt_in_from_env
from ..target import AwsTarget, is_loopback_url
from .base import Emulator, wait_until_answers

if TYPE_CHECKING:
    from typing import Self

ENDPOINT_VAR = "AWS_ENDPOINT_URL"
RUNS_LAMBDA_VAR = "S3SH_ENDPOINT_RUNS_LAMBDA"


class EndpointEmulator(Emulator):
    """Connects to a running emulator; never starts or stops one.

    Whether it runs Lambda itself is detected (LocalStack answers ``/_localstack/health``;
    moto does not run Lambda without Docker) and can be forced with S3SH_ENDPOINT_RUNS_LAMBDA=0/1.
    """

    name = "endpoint"

    def __init__(self, endpoint_url: str | None = None) -> None:
        super().__init__()
        self.endpoint_url = endpoint_url or os.environ.get(ENDPOINT_VAR)
        self.startup_timeout = 5.0
        self._runs_lambda: bool | None = None
        self.allow_remote: bool | None = None

    def with_allow_remote(self, allow: bool) -> Self:
        """Permit a non-loopback endpoint (destructive actions still need named buckets)."""
        self.allow_remote = allow
        return self

    def with_endpoint_url(self, url: str) -> Self:
        self.endpoint_url = url
        return self

    def with_runs_lambda(self, runs_lambda: bool) -> Self:
        self._runs_lambda = runs_lambda
        return self

    @property
    def runs_lambda(self) -> bool:
        if self._runs_lambda is None:
            forced = os.environ.get(RUNS_LAMBDA_VAR, "").strip().lower()
            if forced in {"0", "1", "true", "false", "yes", "no"}:
                self._runs_lambda = forced in {"1", "true", "yes"}
            else:
                self._runs_lambda = _localstack_runs_lambda(self.target.endpoint_url or "")
        return self._runs_lambda

    def start(self) -> Self:
        if not self.endpoint_url:
            raise ConfigError(f"the endpoint emulator needs --endpoint-url or {ENDPOINT_VAR}")
        if not self.endpoint_url.startswith(("http://", "https://")):
            raise ConfigError(f"endpoint URL {self.endpoint_url!r} must start with http:// or https://")
        allowed = remote_opt_in_from_env() if self.allow_remote is None else self.allow_remote
        if not is_loopback_url(self.endpoint_url) and not allowed:
            # Checked before the first request: not even a read leaves the machine without opt-in.
            raise UnsafeTargetError(
                f"refusing to connect to {self.endpoint_url}: it is not a loopback endpoint "
                f"(set {ALLOW_REMOTE_VAR}=1 or --allow-remote, and name the buckets)"
            )
        self._target = AwsTarget(endpoint_url=self.endpoint_url.rstrip("/"), region=self.region)
        wait_until_answers(self._target, self.startup_timeout)
        return self

    def stop(self) -> None:
        """Nothing to stop: the endpoint belongs to someone else."""


def _localstack_runs_lambda(endpoint_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/_localstack/health", timeout=2) as response:  # noqa: S310
            services = json.load(response).get("services", {})
    except (OSError, ValueError):
        return False
    return services.get("lambda") in {"available", "running"}
