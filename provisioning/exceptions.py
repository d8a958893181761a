"""Errors of the harness (provisioning, runtime, experiments).

    S3SelfHealingError
    ├── ConfigError             bad settings, flags or experiment configuration
    ├── UnsafeTargetError       a destructive action aimed at a non-loopback endpoint without opt-in
    ├── EmulatorError
    │   ├── EmulatorStartupError    the emulator did not become ready (its logs are attached)
    │   ├── EmulatorUnreachable     nothing answers at the configured endpoint
    │   └── DockerUnavailable       the backend needs a Docker daemon and none answers
    ├── StackError              deploying or destroying a stack failed
    └── RuntimeFailure          the local Lambda runtime cannot run the deployed function
        └── ArtifactMismatch    no local artifact matches the function's CodeSha256

Every message is one line a user can act on; the CLI prints it without a traceback.
"""

from __future__ import annotations


class S3SelfHealingError(Exception):
    """Base class of every error the harness raises on purpose."""


class ConfigError(S3SelfHealingError):
    """A setting, flag or experiment configuration value is wrong."""


class UnsafeTargetError(S3SelfHealingError):
    """Refused: the target is not loopback and the user has not opted in and named the buckets."""


class EmulatorError(S3SelfHealingError):
    """Base class for emulator backend failures."""


class EmulatorStartupError(EmulatorError):
    """The emulator did not become ready; ``logs`` holds what it printed."""

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message if not logs else f"{message}\n--- emulator logs ---\n{logs}")
        self.logs = logs


class EmulatorUnreachable(EmulatorError):
    """Nothing answers at the configured endpoint."""


class DockerUnavailable(EmulatorError):
    """The backend needs a Docker daemon and none answers."""


class StackError(S3SelfHealingError):
    """Deploying or destroying a stack failed."""


class RuntimeFailure(S3SelfHealingError):
    """The local Lambda runtime cannot run the deployed function."""


class ArtifactMismatch(RuntimeFailure):
    """No local artifact matches the deployed function's CodeSha256."""
