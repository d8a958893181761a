"""Emulators that run in a Docker container through Testcontainers."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import DockerUnavailable, EmulatorStartupError
from ..target import AwsTarget
from .base import Emulator, wait_until_answers
from .docker import docker_status
from .ports import free_loopback_port

if TYPE_CHECKING:
    from typing import Self

    from testcontainers.core.container import DockerContainer

LOCALSTACK_DEFAULT_IMAGE = "localstack/localstack:4.14.0"  # last tag that starts without an auth token
MOTO_DEFAULT_IMAGE = "motoserver/moto:5.2.5"
LOCALSTACK_IMAGE_VAR = "S3SH_LOCALSTACK_IMAGE"
MOTO_IMAGE_VAR = "S3SH_MOTO_IMAGE"
LOCALSTACK_TOKEN_VAR = "LOCALSTACK_AUTH_TOKEN"  # noqa: S105 - the variable name, not a token
DOCKER_SOCKET = "/var/run/docker.sock"


class ContainerEmulator(Emulator):
    """Common start/stop/logs handling for container-backed emulators."""

    default_image: ClassVar[str]
    image_var: ClassVar[str]
    container_port: ClassVar[int]

    def __init__(self, image: str | None = None) -> None:
        super().__init__()
        self.image = image or os.environ.get(self.image_var) or self.default_image
        self.env: dict[str, str] = {}
        self._container: DockerContainer | None = None

    def with_image(self, image: str) -> Self:
        self.image = image
        return self

    def with_env(self, key: str, value: str) -> Self:
        self.env[key] = value
        return self

    def build_container(self) -> DockerContainer:
        """Return the configured, not yet started, container."""
        raise NotImplementedError

    def start(self) -> Self:
        if self._container is not None:
            return self
        available, reason = docker_status()
        if not available:
            raise DockerUnavailable(f"the {self.name} emulator needs Docker: {reason}")
        container = self.build_container()
        try:
            container.start()
            url = self.endpoint_url(container)
            self._container = container
            self._target = AwsTarget(endpoint_url=url, region=self.region)
            wait_until_answers(self._target, self.startup_timeout)
        except Exception as exc:
            logs = _container_logs(container)
            self.stop()
            container.stop()
            raise EmulatorStartupError(
                f"{self.name} container ({self.image}) did not become ready: {exc}", logs
            ) from exc
        return self

    def endpoint_url(self, container: DockerContainer) -> str:
        return f"http://{container.get_container_host_ip()}:{container.get_exposed_port(self.container_port)}"

    def stop(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            container.stop()

    def logs(self) -> str:
        return _container_logs(self._container) if self._container is not None else ""


def _container_logs(container: Any) -> str:
    try:
        out, err = container.get_logs()
        return str((out + err).decode("utf-8", errors="replace"))[-20_000:]
    except Exception:  # noqa: BLE001 - logs are a courtesy on an error path
        return ""


def _bind_loopback(container: DockerContainer, port: int) -> None:
    # Docker publishes on 0.0.0.0 by default; a one-tuple binds a random port on loopback only.
    container.ports[f"{port}/tcp"] = ("127.0.0.1",)  # type: ignore[assignment]


class LocalStackEmulator(ContainerEmulator):
    """LocalStack in a container; runs the healer as a real Lambda (needs the Docker socket).

    The image defaults to ``localstack/localstack:4.14.0``: later tags refuse to start without
    ``LOCALSTACK_AUTH_TOKEN``, which is passed through when set.
    """

    name = "localstack"
    default_image = LOCALSTACK_DEFAULT_IMAGE
    image_var = LOCALSTACK_IMAGE_VAR
    container_port = 4566

    def __init__(self, image: str | None = None) -> None:
        super().__init__(image)
        self.startup_timeout = 120.0
        self.auth_token = os.environ.get(LOCALSTACK_TOKEN_VAR)
        self.mount_docker_socket = True

    def with_auth_token(self, token: str) -> Self:
        self.auth_token = token
        return self

    def without_docker_socket(self) -> Self:
        self.mount_docker_socket = False
        return self

    @property
    def runs_lambda(self) -> bool:
        return self.mount_docker_socket

    def build_container(self) -> DockerContainer:
        from testcontainers.community.localstack import LocalStackContainer

        container = LocalStackContainer(image=self.image, region_name=self.region)
        _bind_loopback(container, self.container_port)
        if self.auth_token:
            container.with_env(LOCALSTACK_TOKEN_VAR, self.auth_token)
        if self.mount_docker_socket:
            # LocalStack starts Lambda functions as sibling containers.
            container.with_volume_mapping(DOCKER_SOCKET, DOCKER_SOCKET, mode="rw")
        for key, value in self.env.items():
            container.with_env(key, value)
        return container


class MotoContainerEmulator(ContainerEmulator):
    """moto's server image in a container.

    It runs on the host network, listening on 127.0.0.1 only, so its SNS deliveries reach the
    local runtime's loopback receiver (from a bridge network, 127.0.0.1 is the container itself).
    """

    name = "moto-container"
    default_image = MOTO_DEFAULT_IMAGE
    image_var = MOTO_IMAGE_VAR
    container_port = 5000

    def __init__(self, image: str | None = None) -> None:
        super().__init__(image)
        self.host_port = 0

    @property
    def runs_lambda(self) -> bool:
        return False

    def build_container(self) -> DockerContainer:
        from testcontainers.core.container import DockerContainer

        self.host_port = self.host_port or free_loopback_port()
        container = DockerContainer(self.image)
        container.with_kwargs(network_mode="host")
        # The image's entry point is moto_server; later flags win over its own "-H 0.0.0.0".
        container.with_command(["-H", "127.0.0.1", "-p", str(self.host_port)])
        for key, value in self.env.items():
            container.with_env(key, value)
        return container

    def endpoint_url(self, container: DockerContainer) -> str:
        return f"http://127.0.0.1:{self.host_port}"
