"""Guards that keep destructive actions on loopback emulators unless the user opts in.

A chaos run deletes data. A target that is not a loopback endpoint (another host,
or real AWS with no endpoint at all) is refused unless the user sets an explicit
opt-in *and* names every bucket the action may touch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from .exceptions import UnsafeTargetError
from .target import AwsTarget

ALLOW_REMOTE_VAR = "S3SH_ALLOW_REMOTE"
ALLOWED_BUCKETS_VAR = "S3SH_ALLOWED_BUCKETS"


def allowed_buckets_from_env() -> frozenset[str]:
    raw = os.environ.get(ALLOWED_BUCKETS_VAR, "")
    return frozenset(b.strip() for b in raw.split(",") if b.strip())


def remote_opt_in_from_env() -> bool:
    return os.environ.get(ALLOW_REMOTE_VAR, "").strip().lower() in {"1", "true", "yes"}


def ensure_safe_target(
    target: AwsTarget,
    buckets: Iterable[str],
    *,
    allow_remote: bool | None = None,
    allowed_buckets: Iterable[str] | None = None,
) -> None:
    """Raise UnsafeTargetError unless ``target`` is loopback or the user opted in for these buckets."""
    if target.is_loopback:
        return
    where = target.endpoint_url or "real AWS (no endpoint URL)"
    opted_in = remote_opt_in_from_env() if allow_remote is None else allow_remote
    if not opted_in:
        raise UnsafeTargetError(
            f"refusing to act on {where}: it is not a loopback endpoint. "
            f"Set {ALLOW_REMOTE_VAR}=1 (or --allow-remote) and name the buckets in {ALLOWED_BUCKETS_VAR}"
        )
    allowed = frozenset(allowed_buckets) if allowed_buckets is not None else allowed_buckets_from_env()
    outside = sorted(set(buckets) - allowed)
    if outside:
        raise UnsafeTargetError(
            f"refusing to act on {where}: bucket(s) {', '.join(outside)} not named in {ALLOWED_BUCKETS_VAR}"
        )
