"""Keep secrets out of journals and reports."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SECRET_ENV_VARS = ("LOCALSTACK_AUTH_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
SECRET_FIELD_WORDS = ("secret", "token", "password", "credential")
_MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words


def secret_values(secrets: Mapping[str, Any] | None = None) -> set[str]:
    """Every secret value the run could know: Chaos Toolkit secrets and the usual env variables."""
    found = {os.environ[name] for name in SECRET_ENV_VARS if os.environ.get(name)}
    found.update(_strings(secrets or {}))
    return {value for value in found if len(value) >= _MIN_SECRET_LENGTH}


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def redact(value: Any, secrets: set[str]) -> Any:
    """A copy of ``value`` with secret strings masked, and fields named like secrets masked whole."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, Mapping):
        return {key: MASK if _secret_field(key, item) else redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, secrets) for item in value]
    return value


def _secret_field(key: object, item: object) -> bool:
    return isinstance(key, str) and isinstance(item, str) and any(word in key.lower() for word in SECRET_FIELD_WORDS)
