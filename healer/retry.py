"""Retry transient AWS errors with backoff and jitter, up to a bound (tenacity, vendored in the zip)."""

from __future__ import annotations

from botocore import exceptions as botocore_errors
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_random_exponential

TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "500",
        "502",
        "503",
        "504",
    }
)
MAX_ATTEMPTS = 6
MAX_SECONDS = 20.0


def is_transient(exc: BaseException) -> bool:
    """Throttling, server errors and dropped connections: worth another try. Denials are not."""
    if isinstance(exc, botocore_errors.ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) in TRANSIENT_CODES
    return isinstance(exc, botocore_errors.ConnectionError | botocore_errors.HTTPClientError)


def transient_retrying() -> Retrying:
    """A fresh retry policy: exponential backoff with full jitter, 6 attempts or 20 s at most."""
    return Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_random_exponential(multiplier=0.1, max=3.0),
        stop=stop_after_attempt(MAX_ATTEMPTS) | stop_after_delay(MAX_SECONDS),
        reraise=True,
    )
