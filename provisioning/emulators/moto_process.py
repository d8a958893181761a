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

from moto.server import ThreadedMotoServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioning.emulators.moto_process")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
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
