"""The interface every emulator backend implements, testcontainers style."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from ..exceptions import EmulatorUnreachable
from ..target import DEFAULT_REGION, AwsTarget

if TYPE_CHECKING:
    from typing import Self


class Emulator(ABC):
    """An AWS API emulator (or endpoint) the stack can be deployed to.

    Configure with chainable ``with_*`` methods, then ``start()``; use as a context manager
    to stop it again. ``runs_lambda`` tells whether the backend executes Lambda functions
    itself; when it does not, the local Lambda runtime takes the SNS deliveries.
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self.region = DEFAULT_REGION
        self.startup_timeout = 60.0
        self._target: AwsTarget | None = None

    def with_region(self, region: str) -> Self:
        self.region = region
        return self

    def with_startup_timeout(self, seconds: float) -> Self:
        self.startup_timeout = seconds
        return self

    @property
    def target(self) -> AwsTarget:
        if self._target is None:
            raise RuntimeError(f"{self.name} emulator is not started")
        return self._target

    @property
    @abstractmethod
    def runs_lambda(self) -> bool:
        """Whether the backend executes Lambda functions itself."""

    @abstractmethod
    def start(self) -> Self:
        """Start (or connect to) the emulator and wait until it answers."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the emulator if this object started it."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def wait_until_answers(target: AwsTarget, timeout: float) -> None:
    """Poll a cheap S3 call until the endpoint answers, or raise EmulatorUnreachable."""
    s3 = target.client("s3", retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=5)

    @retry(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(0.1),
        retry=retry_if_exception_type(Exception),
        reraise=True,
    )
    def probe() -> None:
        s3.list_buckets()

    try:
        probe()
    except Exception as exc:
        raise EmulatorUnreachable(
            f"nothing answers at {target.endpoint_url} after {timeout:g}s ({type(exc).__name__}: {exc})"
        ) from exc
