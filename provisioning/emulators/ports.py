"""Free ports on loopback."""

from __future__ import annotations

import socket


def free_loopback_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (for servers that cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
