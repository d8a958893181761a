"""Which keys a fault hits: a count, a fraction or a prefix, chosen reproducibly."""

from __future__ import annotations

import random

from provisioning.exceptions import ConfigError
from provisioning.observe import list_etags

from .settings import ExperimentConfig


def select_keys(
    config: ExperimentConfig,
    *,
    count: int | None = None,
    fraction: float | None = None,
    prefix: str = "",
    seed: int = 0,
    bucket: str | None = None,
    action: str = "action",
) -> list[str]:
    """Keys of ``bucket`` (default: production) under ``prefix``: all, ``count`` or ``fraction`` of them.

    The same arguments pick the same keys, so a rollback can recompute what its action hit.
    """
    if count is not None and fraction is not None:
        raise ConfigError(f"{action}: give count or fraction, not both")
    if count is not None and count < 0:
        raise ConfigError(f"{action}: count={count} must not be negative")
    if fraction is not None and not 0 < fraction <= 1:
        raise ConfigError(f"{action}: fraction={fraction} must be in (0, 1]")
    keys = sorted(list_etags(config.target.s3(), bucket or config.production_bucket, prefix))
    if fraction is not None:
        count = round(len(keys) * fraction)
    if count is not None:
        if count > len(keys):
            raise ConfigError(f"{action}: asked for {count} keys, only {len(keys)} exist under {prefix!r}")
        keys = sorted(random.Random(seed).sample(keys, count))
    config.cap(len(keys), action)
    return keys
