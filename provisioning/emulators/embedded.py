"""The embedded emulator: moto in server mode, in a child process bound to 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from typing import IO, TYPE_CHECKING

from ..exceptions import EmulatorStartupError
from ..target import AwsTarget
from .base import Emulator, wait_until_answers

if TYPE_CHECKING:
    from typing import Self

LOOPBACK = "127.0.0.1"


class EmbeddedEmulator(Emulator):
    """moto's ThreadedMotoServer in a child process; needs no Docker.

    moto cannot execute Lambda functions without Docker, so ``runs_lambda`` is False and the
    local runtime executes the healer. Parity gaps against AWS are listed in the README.
    """

    name = "embedded"

    def __init__(self) -> None:
        super().__init__()
        self.port = 0  # 0: the OS picks a free port
        self.startup_timeout = 30.0
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self.env: dict[str, str] = {}
        self.parity_patches = True

    def with_port(self, port: int) -> Self:
        self.port = port
        return self

    def with_env(self, key: str, value: str) -> Self:
        """An environment variable for the moto process (e.g. INITIAL_NO_AUTH_ACTION_COUNT)."""
        self.env[key] = value
        return self

    def without_parity_patches(self) -> Self:
        """Run moto exactly as released (no delete-marker events)."""
        self.parity_patches = False
        return self

    @property
    def runs_lambda(self) -> bool:
        return False

    @property
    def pid(self) -> int | None:
        """The moto process's id while it runs (for measuring its memory)."""
        return self._process.pid if self._process else None

    def start(self) -> Self:
        if self._process is not None:
            return self
        self._log = tempfile.NamedTemporaryFile("w+", prefix="s3sh-moto-", suffix=".log", delete=False)  # noqa: SIM115
        env = dict(os.environ)
        # moto posts SNS deliveries to the runtime on loopback: never through a proxy.
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env.update(self.env)
        command = [
            sys.executable,
            "-m",
            "provisioning.emulators.moto_process",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
        ]
        if not self.parity_patches:
            command.append("--no-parity-patches")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        url = self._read_ready_line()
        self._target = AwsTarget(endpoint_url=url, region=self.region)
        try:
            wait_until_answers(self._target, self.startup_timeout)
        except Exception as exc:
            logs = self.logs()
            self.stop()
            raise EmulatorStartupError(f"embedded emulator at {url} did not answer: {exc}", logs) from exc
        return self

    def _read_ready_line(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self._process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.startup_timeout)
        text = line[0].strip() if line else ""
        if not text.startswith("READY "):
            logs = self.logs()
            self.stop()
            raise EmulatorStartupError(
                f"embedded emulator did not start within {self.startup_timeout:g}s (printed {text!r})", logs
            )
        return text.split(" ", 1)[1]

    def logs(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-20_000:]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.stdin:
                process.stdin.close()  # the child exits when its stdin closes
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            os.unlink(self._log.name)
            self._log = None
