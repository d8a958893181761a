"""Healer configuration, read from the function's environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .exceptions import ConfigurationError

PRODUCTION_BUCKET_VAR = "PRODUCTION_BUCKET"
BACKUP_BUCKET_VAR = "BACKUP_BUCKET"

# S3's bucket naming rules, the part a typo is likely to break.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")


DEAD_LETTER_QUEUE_VAR = "DEAD_LETTER_QUEUE_URL"


@dataclass(frozen=True)
class HealerConfig:
    production_bucket: str
    backup_bucket: str
    dead_letter_queue_url: str | None = None


def load_config(environ: Mapping[str, str]) -> HealerConfig:
    """Build and validate the configuration; raise ConfigurationError saying what is wrong."""
    production = _bucket(environ, PRODUCTION_BUCKET_VAR)
    backup = _bucket(environ, BACKUP_BUCKET_VAR)
    if production == backup:
        raise ConfigurationError(
            f"{PRODUCTION_BUCKET_VAR} and {BACKUP_BUCKET_VAR} are both {production!r}: "
            "the backup must be a separate bucket"
        )
    queue = environ.get(DEAD_LETTER_QUEUE_VAR, "").strip() or None
    if queue is not None and not queue.startswith(("http://", "https://")):
        raise ConfigurationError(f"environment variable {DEAD_LETTER_QUEUE_VAR}={queue!r} is not an SQS queue URL")
    return HealerConfig(production_bucket=production, backup_bucket=backup, dead_letter_queue_url=queue)


def _bucket(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set; it must name an S3 bucket")
    if not _BUCKET_NAME.fullmatch(value) or ".." in value or _IP_ADDRESS.fullmatch(value):
        raise ConfigurationError(f"environment variable {name}={value!r} is not a valid S3 bucket name")
    return value
