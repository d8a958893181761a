"""Emulator backends behind one interface, chosen by name.

``auto`` picks LocalStack when a Docker daemon answers, else the embedded moto server.
``aws`` (real AWS) is never picked automatically and is refused by safety.py without opt-in.
"""

from __future__ import annotations

import os

from ..exceptions import ConfigError
from .aws import RealAws
from .base import Emulator
from .containers import LocalStackEmulator, MotoContainerEmulator
from .docker import docker_available
from .embedded import EmbeddedEmulator
from .endpoint import EndpointEmulator

EMULATOR_VAR = "S3SH_EMULATOR"
BACKENDS: dict[str, type[Emulator]] = {
    "embedded": EmbeddedEmulator,
    "localstack": LocalStackEmulator,
    "moto-container": MotoContainerEmulator,
    "endpoint": EndpointEmulator,
    "aws": RealAws,
}
CHOICES = ("auto", *BACKENDS)

__all__ = [
    "BACKENDS",
    "CHOICES",
    "EMULATOR_VAR",
    "EmbeddedEmulator",
    "Emulator",
    "EndpointEmulator",
    "LocalStackEmulator",
    "MotoContainerEmulator",
    "RealAws",
    "create_emulator",
    "resolve_backend_name",
]


def resolve_backend_name(name: str | None = None) -> str:
    """Turn ``auto``/None (or the S3SH_EMULATOR variable) into a concrete backend name."""
    chosen = (name or os.environ.get(EMULATOR_VAR) or "auto").strip().lower()
    if chosen == "auto":
        return "localstack" if docker_available() else "embedded"
    if chosen not in BACKENDS:
        raise ConfigError(f"unknown emulator {chosen!r}: choose one of {', '.join(CHOICES)}")
    return chosen


def create_emulator(name: str | None = None, *, region: str | None = None) -> Emulator:
    """A configured, not yet started, emulator for the backend name."""
    emulator = BACKENDS[resolve_backend_name(name)]()
    if region:
        emulator.with_region(region)
    return emulator
