"""Session-wide test resources: one emulator per pytest session, one stack per test.

Under ``pytest -n auto`` the xdist controller starts the emulator (lazily, when the first
worker is configured) and hands its address to every worker through ``workerinput``; each
worker names its stacks with its worker id, so tests never collide.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from provisioning.emulators import CHOICES, EMULATOR_VAR, Emulator, create_emulator
from provisioning.exceptions import S3SelfHealingError
from provisioning.pipeline import Pipeline
from provisioning.stack import StackNames
from provisioning.target import AwsTarget

pytest_plugins = ["reports.pytest_plugin"]

_WORKERINPUT_KEY = "s3sh_emulator"
# Where --break-healer points the healer: a bucket that never exists.
BROKEN_BACKUP_BUCKET = "s3sh-no-such-backup-bucket"


@dataclass(frozen=True)
class EmulatorInfo:
    """What a worker needs to use the session emulator."""

    backend: str
    runs_lambda: bool
    target: AwsTarget

    def to_json(self) -> str:
        return json.dumps({"backend": self.backend, "runs_lambda": self.runs_lambda, "target": self.target.to_dict()})

    @classmethod
    def from_json(cls, raw: str) -> EmulatorInfo:
        data = json.loads(raw)
        return cls(backend=data["backend"], runs_lambda=data["runs_lambda"], target=AwsTarget.from_dict(data["target"]))


class SessionEmulator:
    """Starts the chosen emulator on first use and stops it at the end of the session."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._emulator: Emulator | None = None
        self._info: EmulatorInfo | None = None

    def info(self) -> EmulatorInfo:
        if self._info is None:
            try:
                emulator = create_emulator(self.name)
                emulator.start()
            except S3SelfHealingError as exc:
                pytest.exit(f"cannot start the {self.name!r} emulator for this test session: {exc}", returncode=3)
            self._emulator = emulator
            self._info = EmulatorInfo(emulator.name, emulator.runs_lambda, emulator.target)
        return self._info

    def stop(self) -> None:
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None


_SESSION_KEY = pytest.StashKey[SessionEmulator]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("s3-self-healing")
    group.addoption(
        "--emulator",
        choices=CHOICES,
        default=os.environ.get(EMULATOR_VAR, "auto"),
        help="emulator backend for end-to-end tests (default: $S3SH_EMULATOR or auto)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSION_KEY] = SessionEmulator(config.getoption("--emulator"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the (lazily started) emulator's address to each worker."""
    node.workerinput[_WORKERINPUT_KEY] = node.config.stash[_SESSION_KEY].info().to_json()


def pytest_unconfigure(config: pytest.Config) -> None:
    config.stash[_SESSION_KEY].stop()


@pytest.fixture(scope="session")
def emulator(request: pytest.FixtureRequest) -> EmulatorInfo:
    """The session emulator: the controller's under xdist, else started here on first use."""
    workerinput = getattr(request.config, "workerinput", None)
    if workerinput and _WORKERINPUT_KEY in workerinput:
        return EmulatorInfo.from_json(workerinput[_WORKERINPUT_KEY])
    return request.config.stash[_SESSION_KEY].info()


@pytest.fixture(scope="session")
def worker_id_prefix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


_stack_counter = itertools.count(1)


@pytest.fixture
def make_pipeline(
    emulator: EmulatorInfo, worker_id_prefix: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Pipeline]]:
    """Factory: deploy a fresh stack (named after this worker) and take it down after the test."""
    created: list[Pipeline] = []
    broken = request.config.getoption("--break-healer")

    def make(objects: int = 0, **kwargs: Any) -> Pipeline:
        if broken:
            kwargs["healer_environment"] = {
                **kwargs.get("healer_environment", {}),
                "BACKUP_BUCKET": BROKEN_BACKUP_BUCKET,
            }
        prefix = f"{worker_id_prefix}-{next(_stack_counter):03d}-{uuid.uuid4().hex[:6]}"
        pipeline = Pipeline.up(
            emulator.target, StackNames.from_prefix(prefix), runs_lambda=emulator.runs_lambda, objects=objects, **kwargs
        )
        created.append(pipeline)
        return pipeline

    yield make
    for pipeline in created:
        pipeline.down()


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    """A fresh stack seeded with 100 objects."""
    return make_pipeline(objects=100)


@pytest.fixture
def requires_local_runtime(emulator: EmulatorInfo) -> None:
    """Skip tests of the local Lambda runtime on backends that run Lambda themselves."""
    if emulator.runs_lambda:
        pytest.skip(f"the {emulator.backend} backend runs Lambda itself; the local runtime is not used")
