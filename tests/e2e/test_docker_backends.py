"""The Docker-backed emulators really start, serve S3 and stop (skipped when no daemon answers)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from provisioning.emulators.base import wait_until_answers
from provisioning.emulators.containers import ContainerEmulator, LocalStackEmulator, MotoContainerEmulator
from provisioning.emulators.docker import docker_available, docker_status
from provisioning.exceptions import EmulatorUnreachable

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(
        not docker_available(),
        reason=f"Docker-backed emulator tests need a Docker daemon: {docker_status()[1]}",
    ),
]


@pytest.mark.parametrize(
    "make_emulator",
    [
        pytest.param(LocalStackEmulator, id="localstack"),
        pytest.param(MotoContainerEmulator, id="moto-container"),
    ],
)
def test_container_emulator_starts_serves_s3_and_stops(make_emulator: Callable[[], ContainerEmulator]) -> None:
    emulator = make_emulator()
    bucket = f"docker-backend-{uuid.uuid4().hex[:12]}"
    with emulator:
        target = emulator.target
        assert target.is_loopback, target.endpoint_url
        s3 = target.s3()
        s3.create_bucket(Bucket=bucket)
        assert bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}
        s3.put_object(Bucket=bucket, Key="k", Body=b"v")
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    with pytest.raises(EmulatorUnreachable):
        wait_until_answers(target, timeout=10)
