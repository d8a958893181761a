"""Is a Docker daemon reachable? Asked once, quickly, with the reason when not."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def docker_status() -> tuple[bool, str]:
    """Return (available, reason). Never raises; a missing daemon is an answer, not an error."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - testcontainers depends on docker
        return False, f"the docker Python package is not installed ({exc})"
    try:
        client = docker.from_env(timeout=3)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no daemon"
        return False, f"no Docker daemon answers ({type(exc).__name__}: {str(exc)[:200]})"
    return True, "Docker daemon answers"


def docker_available() -> bool:
    return docker_status()[0]
