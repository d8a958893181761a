"""Inside one execution environment (a child process): import the handler, serve invocations.

Protocol with the parent (``environment.py``): one JSON request per line on stdin; one JSON
reply per line on the file descriptor named by S3SH_RESULT_FD. stdout and stderr are the
function's log, as in Lambda. Only the standard library is used before the handler loads.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The subset of Lambda's context object handlers use."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("S3SH_FUNCTION_ARN", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _load_handler(task_root: str, handler: str) -> Any:
    module_name, _, function_name = handler.rpartition(".")
    sys.path.insert(0, task_root)
    module = importlib.import_module(module_name)
    module_file = os.path.realpath(getattr(module, "__file__", "") or "")
    if not module_file.startswith(os.path.realpath(task_root) + os.sep):
        raise ImportError(f"{module_name} loaded from {module_file}, not from the deployed code in {task_root}")
    return getattr(module, function_name)


def main() -> int:
    results = os.fdopen(int(os.environ["S3SH_RESULT_FD"]), "w", buffering=1, encoding="utf-8")
    try:
        handler = _load_handler(os.environ["LAMBDA_TASK_ROOT"], os.environ["_HANDLER"])
    except Exception as exc:  # noqa: BLE001 - reported to the parent as an init error
        print(f"[ERROR] Runtime.ImportModuleError: {exc}", flush=True)
        results.write(json.dumps({"init_error": _error(exc)}) + "\n")
        return 1
    results.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        request_id = request["request_id"]
        started = time.monotonic()
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        try:
            result = handler(request["event"], LambdaContext(request_id, request["deadline_ms"]))
            reply: dict[str, Any] = {"request_id": request_id, "ok": True, "result": result}
        except Exception as exc:  # noqa: BLE001 - an unhandled function error, as Lambda reports it
            print(f"[ERROR] {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc(file=sys.stdout)
            reply = {"request_id": request_id, "ok": False, "error": _error(exc)}
        duration_ms = (time.monotonic() - started) * 1000
        print(f"END RequestId: {request_id}", flush=True)
        print(f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms", flush=True)
        try:
            results.write(json.dumps(reply, default=str) + "\n")
        except (TypeError, ValueError) as exc:
            results.write(json.dumps({"request_id": request_id, "ok": False, "error": _error(exc)}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
