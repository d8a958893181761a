"""Child-process entry point of the embedded emulator: moto's ThreadedMotoServer on loopback.

Run as ``python -m provisioning.emulators.moto_process``. It prints ``READY <url>`` on stdout
once listening and exits when its standard input closes (the parent stopped or died), so an
emulator is never left behind. Running moto in its own process gives it the second core:
emulator, runtime and healer in one process share one GIL and halve healing throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from typing import Any

from moto.server import ThreadedMotoServer


def emit_delete_marker_events() -> None:
    """Parity patch: make moto announce delete markers, as AWS and LocalStack do.

    moto 5.2.5 creates a delete marker on a versioning-enabled bucket silently (no
    ``ObjectRemoved:DeleteMarkerCreated``), so nothing would ever heal such a delete. This wraps
    the one method that creates markers to send the event AWS documents. Only the embedded
    emulator has it; README lists it under the parity notes.
    """
    from types import SimpleNamespace

    from moto.s3 import notifications
    from moto.s3.models import S3Backend

    create_marker = S3Backend._set_delete_marker
    build_event = notifications._get_s3_event

    def event_with_version(event_name: str, bucket: object, key: object, notification_id: str) -> dict[str, Any]:
        event = build_event(event_name, bucket, key, notification_id)  # type: ignore[arg-type]
        if event_name.endswith("DeleteMarkerCreated") and getattr(key, "version_id", None):
            event["Records"][0]["s3"]["object"]["versionId"] = key.version_id  # type: ignore[attr-defined]
        return event

    notifications._get_s3_event = event_with_version

    def set_delete_marker_and_notify(self: S3Backend, bucket_name: str, key_name: str) -> object:
        marker = create_marker(self, bucket_name, key_name)
        bucket = self.get_bucket(bucket_name)
        # The event describes the marker: no size, no ETag (AWS sends the marker's versionId).
        described = SimpleNamespace(name=key_name, size=0, etag="", version_id=marker.version_id)
        notifications.send_event(
            self.account_id,
            notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
            bucket,
            described,
        )
        return marker

    S3Backend._set_delete_marker = set_delete_marker_and_notify  # type: ignore[method-assign,assignment]


def serialise_etag_computation() -> None:
    """Bug fix: moto computes an object's ETag lazily, reading its buffer without the key's lock.

    Two requests touching a new object at once (a CopyObject response and a HEAD, say) then
    interleave their seeks and reads, and for objects over 16 MiB (read in 16 MiB chunks) the
    MD5 of the wrong bytes is cached as the ETag for good: the content is right, its ETag wrong.
    Taking the lock that moto's own ``value`` reader takes makes the computation atomic.
    """
    from moto.s3.models import FakeKey

    compute = vars(FakeKey)["etag"].fget

    def locked_etag(self: FakeKey) -> str:
        with self.lock:
            return str(compute(self))

    FakeKey.etag = property(locked_etag)  # type: ignore[assignment,method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioning.emulators.moto_process")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-parity-patches", action="store_true", help="run moto exactly as released")
    args = parser.parse_args(argv)
    if not args.no_parity_patches:
        emit_delete_marker_events()
        serialise_etag_computation()
    # One log line per request would drown the log that is attached to failures.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"READY http://{host}:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # blocks until the parent closes the pipe
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
