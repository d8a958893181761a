"""Every resource name of a stack derives from its prefix, so stacks coexist on one emulator."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..exceptions import ConfigError

# Leaves room for the longest suffix ("-production") within S3's 63-character bucket names.
_PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Bucket-name starts S3 reserves.
_RESERVED_STARTS = ("xn--", "sthree-", "amzn-s3-demo-")


@dataclass(frozen=True)
class StackNames:
    prefix: str
    production_bucket: str
    backup_bucket: str
    topic: str
    function: str
    role: str
    policy: str
    log_group: str
    dead_letter_queue: str
    sweep_function: str
    sweep_log_group: str
    sweep_schedule: str

    @classmethod
    def from_prefix(
        cls, prefix: str, *, production_bucket: str | None = None, backup_bucket: str | None = None
    ) -> StackNames:
        if not _PREFIX.fullmatch(prefix) or prefix.startswith(_RESERVED_STARTS):
            raise ConfigError(
                f"stack prefix {prefix!r} must be 1-40 characters of lowercase letters, digits and '-', "
                f"starting with a letter or digit and not with {', '.join(_RESERVED_STARTS)}"
            )
        for given in (production_bucket, backup_bucket):
            if given is not None and (not _BUCKET.fullmatch(given) or given.startswith(_RESERVED_STARTS)):
                raise ConfigError(f"{given!r} is not a valid S3 bucket name")
        function = f"{prefix}-healer"
        return cls(
            prefix=prefix,
            production_bucket=production_bucket or f"{prefix}-production",
            backup_bucket=backup_bucket or f"{prefix}-backup",
            topic=f"{prefix}-object-removed",
            function=function,
            role=f"{prefix}-healer-role",
            policy=f"{prefix}-healer-least-privilege",
            log_group=f"/aws/lambda/{function}",
            dead_letter_queue=f"{prefix}-healer-dlq",
            sweep_function=f"{prefix}-sweep",
            sweep_log_group=f"/aws/lambda/{prefix}-sweep",
            sweep_schedule=f"{prefix}-sweep-schedule",
        )
