"""One execution environment: a child process that runs the function, one invocation at a time."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..exceptions import RuntimeFailure


@dataclass(frozen=True)
class FunctionSpec:
    """What the runtime read from the backend about the deployed function."""

    name: str
    arn: str
    handler: str
    timeout_s: float
    memory_mb: int
    environment: dict[str, str]
    code_sha256: str


class InvocationTimeout(Exception):
    """The function ran past its timeout; the environment was killed."""


class ExecutionEnvironment:
    """Starts the bootstrap child with the function's environment and relays invocations to it.

    ``on_log(stream_name, line)`` receives every line the function prints.
    """

    def __init__(
        self,
        spec: FunctionSpec,
        task_root: str,
        aws_environment: dict[str, str],
        log_stream: str,
        on_log: Callable[[str, str], None],
        init_timeout_s: float = 30.0,
    ) -> None:
        self.spec = spec
        self.log_stream = log_stream
        self._on_log = on_log
        read_fd, write_fd = os.pipe()
        env = {
            **spec.environment,
            **aws_environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "S3SH_FUNCTION_ARN": spec.arn,
            "LAMBDA_TASK_ROOT": task_root,
            "_HANDLER": spec.handler,
            "S3SH_RESULT_FD": str(write_fd),
            "PYTHONIOENCODING": "utf-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "provisioning.runtime.bootstrap"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
            env=env,
            cwd=task_root,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        os.close(write_fd)
        self._results = read_fd
        self._buffer = b""
        self._log_thread = threading.Thread(target=self._pump_logs, name=f"logs-{log_stream}", daemon=True)
        self._log_thread.start()
        ready = self._read_reply(init_timeout_s)
        if "init_error" in ready:
            self.close()
            error = ready["init_error"]
            raise RuntimeFailure(
                f"function {spec.name} failed to initialise: {error['errorType']}: {error['errorMessage']}"
            )

    def _pump_logs(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._on_log(self.log_stream, line.rstrip("\n"))

    def invoke(self, request_id: str, event: Any) -> dict[str, Any]:
        """Run one invocation; return the reply. Raise InvocationTimeout past the function's timeout."""
        deadline_ms = int((time.time() + self.spec.timeout_s) * 1000)
        request = json.dumps({"request_id": request_id, "event": event, "deadline_ms": deadline_ms})
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(request + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise RuntimeFailure(f"execution environment of {self.spec.name} is gone: {exc}") from exc
        return self._read_reply(self.spec.timeout_s)

    def _read_reply(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise InvocationTimeout(f"Task timed out after {timeout_s:.2f} seconds")
            readable, _, _ = select.select([self._results], [], [], remaining)
            if readable:
                chunk = os.read(self._results, 65536)
                if not chunk:
                    code = self._process.poll()
                    self.close()
                    raise RuntimeFailure(f"execution environment of {self.spec.name} exited (code {code})")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def kill(self) -> None:
        """Kill the child at once (a crash); the pending invocation then fails."""
        if self._process.poll() is None:
            self._process.kill()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        if self._process.poll() is None:
            if self._process.stdin:
                with contextlib.suppress(OSError):
                    self._process.stdin.close()
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        with contextlib.suppress(OSError):
            os.close(self._results)
        self._log_thread.join(timeout=2)
