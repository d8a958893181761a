"""Errors raised by the healer.

    HealerError
    ├── ConfigurationError       bad or missing environment configuration
    ├── BadEventError            a record that cannot be parsed (never retried into success)
    └── RestoreError             a record that was understood but could not be healed
        ├── BackupObjectMissing  the key has no copy in the backup bucket
        └── IntegrityError       the bytes read do not match the backup's checksum

``HealingFailed`` is what the handler raises at the end of an invocation when
any record failed: Lambda then retries the event and finally sends it to the
on-failure destination (the dead-letter queue).
"""

from __future__ import annotations


class HealerError(Exception):
    """Base class of every error the healer raises on purpose."""


class ConfigurationError(HealerError):
    """The function's environment is missing a setting or holds a bad one."""


class BadEventError(HealerError):
    """A record could not be parsed into an S3 object-removed event."""


class RestoreError(HealerError):
    """A removed object could not be restored."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class BackupObjectMissing(RestoreError):
    """The backup bucket holds no copy of the key, so nothing can be restored."""


class IntegrityError(RestoreError):
    """The bytes read from the backup do not match its checksum."""


class HealingFailed(HealerError):
    """One or more records of an invocation failed; their siblings were processed."""

    def __init__(self, failures: list[str]) -> None:
        shown = "; ".join(failures[:10])
        more = f" (+{len(failures) - 10} more)" if len(failures) > 10 else ""
        super().__init__(f"{len(failures)} record(s) failed: {shown}{more}")
        self.failures = failures
