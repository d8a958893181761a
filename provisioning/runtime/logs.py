"""Ship the function's output to its CloudWatch log group, batched like Lambda does."""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from typing import Any

_MAX_BATCH = 1000  # well under PutLogEvents' 10,000 events / 1 MiB


class LogShipper:
    """Collects (stream, line) pairs and sends them in batches from a background thread."""

    def __init__(self, logs_client: Any, log_group: str, flush_interval_s: float = 0.2) -> None:
        self._logs = logs_client
        self._group = log_group
        self._interval = flush_interval_s
        self._lines: queue.SimpleQueue[tuple[str, str, int] | None] = queue.SimpleQueue()
        self._streams: set[str] = set()
        self._pending = 0
        self._sent = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"log-shipper-{log_group}", daemon=True)
        self._thread.start()

    def emit(self, stream: str, line: str) -> None:
        with self._sent:
            self._pending += 1
        self._lines.put((stream, line, int(time.time() * 1000)))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every emitted line was sent. Returns False on timeout."""
        with self._sent:
            return self._sent.wait_for(lambda: self._pending == 0, timeout_s)

    def close(self) -> None:
        self._lines.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        closing = False
        while not closing:
            batch: dict[str, list[dict[str, Any]]] = {}
            item = self._lines.get()
            deadline = time.monotonic() + self._interval
            while True:
                if item is None:
                    closing = True
                    break
                stream, line, timestamp = item
                batch.setdefault(stream, []).append({"timestamp": timestamp, "message": line})
                if sum(len(v) for v in batch.values()) >= _MAX_BATCH:
                    break
                try:
                    item = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            for stream, events in batch.items():
                self._send(stream, events)
            with self._sent:
                self._pending -= sum(len(events) for events in batch.values())
                self._sent.notify_all()

    def _send(self, stream: str, events: list[dict[str, Any]]) -> None:
        try:
            if stream not in self._streams:
                with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
                    self._logs.create_log_stream(logGroupName=self._group, logStreamName=stream)
                self._streams.add(stream)
            self._logs.put_log_events(
                logGroupName=self._group, logStreamName=stream, logEvents=sorted(events, key=lambda e: e["timestamp"])
            )
        except Exception as exc:  # noqa: BLE001 - the log is not lost: it goes to stderr instead
            print(
                f"s3-self-healing runtime: could not ship {len(events)} log line(s) to {self._group}: {exc}",
                file=sys.stderr,
            )
            for event in events:
                print(f"[{self._group}/{stream}] {event['message']}", file=sys.stderr)
