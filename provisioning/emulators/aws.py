"""Real AWS, for users who outgrow one machine. Never chosen by ``auto``; guarded by safety.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import EmulatorUnreachable, UnsafeTargetError
from ..safety import ALLOW_REMOTE_VAR, remote_opt_in_from_env
from ..target import AwsTarget
from .base import Emulator

if TYPE_CHECKING:
    from typing import Self


class RealAws(Emulator):
    """The default boto3 credential chain against AWS itself; Lambda runs the healer."""

    name = "aws"

    def __init__(self) -> None:
        super().__init__()
        self.allow_remote: bool | None = None

    def with_allow_remote(self, allow: bool) -> Self:
        self.allow_remote = allow
        return self

    @property
    def runs_lambda(self) -> bool:
        return True

    def start(self) -> Self:
        allowed = remote_opt_in_from_env() if self.allow_remote is None else self.allow_remote
        if not allowed:
            raise UnsafeTargetError(
                f"refusing to use real AWS without opt-in: set {ALLOW_REMOTE_VAR}=1 or --allow-remote"
            )
        self._target = AwsTarget(endpoint_url=None, region=self.region, access_key_id=None, secret_access_key=None)
        try:
            self._target.client("sts").get_caller_identity()
        except Exception as exc:
            raise EmulatorUnreachable(f"cannot call AWS with the default credentials: {exc}") from exc
        return self

    def stop(self) -> None:
        """Nothing to stop."""
