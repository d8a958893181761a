"""Choosing an emulator backend and configuring the container/endpoint backends (no daemon needed)."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from docker.utils import convert_port_bindings

import provisioning.emulators
from provisioning.emulators import CHOICES, EMULATOR_VAR, resolve_backend_name
from provisioning.emulators import containers as containers_module
from provisioning.emulators.containers import (
    DOCKER_SOCKET,
    LOCALSTACK_IMAGE_VAR,
    LOCALSTACK_TOKEN_VAR,
    MOTO_IMAGE_VAR,
    LocalStackEmulator,
    MotoContainerEmulator,
)
from provisioning.emulators.endpoint import ENDPOINT_VAR, EndpointEmulator
from provisioning.exceptions import ConfigError, DockerUnavailable, EmulatorUnreachable


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (EMULATOR_VAR, LOCALSTACK_IMAGE_VAR, MOTO_IMAGE_VAR, LOCALSTACK_TOKEN_VAR, ENDPOINT_VAR):
        monkeypatch.delenv(name, raising=False)


def docker_answers(monkeypatch: pytest.MonkeyPatch, answers: bool) -> None:
    monkeypatch.setattr(provisioning.emulators, "docker_available", lambda: answers)


class _OfflineDockerClient:
    """Stands in for testcontainers' DockerClient, whose constructor contacts the daemon."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


@pytest.fixture
def offline_containers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let build_container() construct testcontainers objects without a Docker daemon.

    DockerContainer.__init__ creates a docker client, which asks the daemon for its API version;
    with no daemon on this machine that raises, so the client is replaced by an inert stub.
    """
    container_module = pytest.importorskip("testcontainers.core.container")
    if not hasattr(container_module, "DockerClient"):
        pytest.skip("testcontainers no longer builds its DockerClient in core.container; cannot build offline")
    monkeypatch.setattr(container_module, "DockerClient", _OfflineDockerClient)


# --- backend selection ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["auto", None, " AUTO "])
def test_auto_picks_embedded_when_no_docker_daemon_answers(monkeypatch: pytest.MonkeyPatch, name: str | None) -> None:
    docker_answers(monkeypatch, False)
    assert resolve_backend_name(name) == "embedded"


def test_auto_picks_localstack_when_a_docker_daemon_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    docker_answers(monkeypatch, True)
    assert resolve_backend_name("auto") == "localstack"


@pytest.mark.parametrize("name", ["embedded", "localstack", "moto-container", "endpoint", "aws"])
def test_concrete_names_are_taken_as_given_whatever_docker_says(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    docker_answers(monkeypatch, True)
    assert resolve_backend_name(name) == name
    assert resolve_backend_name(name.upper()) == name


def test_unknown_name_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError) as rejected:
        resolve_backend_name("docker-compose")
    message = str(rejected.value)
    assert "docker-compose" in message
    for choice in CHOICES:
        assert choice in message


def test_emulator_variable_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    docker_answers(monkeypatch, True)
    monkeypatch.setenv(EMULATOR_VAR, "moto-container")
    assert resolve_backend_name() == "moto-container"


def test_emulator_variable_auto_still_asks_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    docker_answers(monkeypatch, False)
    monkeypatch.setenv(EMULATOR_VAR, "auto")
    assert resolve_backend_name() == "embedded"


def test_explicit_name_beats_the_emulator_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EMULATOR_VAR, "localstack")
    assert resolve_backend_name("embedded") == "embedded"


def test_unknown_name_in_the_emulator_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EMULATOR_VAR, "nonsense")
    with pytest.raises(ConfigError, match="nonsense"):
        resolve_backend_name()


# --- LocalStack configuration -------------------------------------------------------------------------


def test_localstack_image_defaults_to_the_last_tag_without_auth_token() -> None:
    assert LocalStackEmulator().image == "localstack/localstack:4.14.0"


def test_localstack_image_variable_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOCALSTACK_IMAGE_VAR, "localstack/localstack:9.9")
    assert LocalStackEmulator().image == "localstack/localstack:9.9"


def test_with_image_overrides_the_image_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOCALSTACK_IMAGE_VAR, "localstack/localstack:9.9")
    emulator = LocalStackEmulator().with_image("my/localstack:1")
    assert emulator.image == "my/localstack:1"


def test_localstack_container_uses_the_configured_image(offline_containers: None) -> None:
    container = LocalStackEmulator().with_image("my/localstack:1").build_container()
    assert container.image.endswith("my/localstack:1")


def test_auth_token_is_passed_into_the_container_when_set(
    monkeypatch: pytest.MonkeyPatch, offline_containers: None
) -> None:
    monkeypatch.setenv(LOCALSTACK_TOKEN_VAR, "ls-token-123")
    container = LocalStackEmulator().build_container()
    assert container.env[LOCALSTACK_TOKEN_VAR] == "ls-token-123"


def test_auth_token_is_absent_from_the_container_when_unset(offline_containers: None) -> None:
    container = LocalStackEmulator().build_container()
    assert LOCALSTACK_TOKEN_VAR not in container.env


def test_localstack_port_is_published_on_loopback_only(offline_containers: None) -> None:
    container = LocalStackEmulator().build_container()
    assert container.ports["4566/tcp"] == ("127.0.0.1",)
    # What docker-py will send: the earlier unbound "4566" entry must not survive next to it.
    assert convert_port_bindings(container.ports) == {"4566/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}


def test_docker_socket_is_mounted_by_default_so_localstack_runs_lambda(offline_containers: None) -> None:
    emulator = LocalStackEmulator()
    container = emulator.build_container()
    assert container.volumes[DOCKER_SOCKET] == {"bind": DOCKER_SOCKET, "mode": "rw"}
    assert emulator.runs_lambda


def test_without_docker_socket_mounts_nothing_and_does_not_run_lambda(offline_containers: None) -> None:
    emulator = LocalStackEmulator().without_docker_socket()
    assert DOCKER_SOCKET not in emulator.build_container().volumes
    assert not emulator.runs_lambda


def test_extra_env_reaches_the_localstack_container(offline_containers: None) -> None:
    container = LocalStackEmulator().with_env("DEBUG", "1").build_container()
    assert container.env["DEBUG"] == "1"


# --- moto container configuration ----------------------------------------------------------------------


def test_moto_container_image_defaults_to_the_pinned_moto() -> None:
    assert MotoContainerEmulator().image == "motoserver/moto:5.2.5"


def test_moto_image_variable_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MOTO_IMAGE_VAR, "motoserver/moto:latest")
    assert MotoContainerEmulator().image == "motoserver/moto:latest"


def test_moto_container_listens_on_loopback_of_the_host_network(offline_containers: None) -> None:
    emulator = MotoContainerEmulator()
    container = emulator.build_container()
    command = container._command
    assert isinstance(command, list)
    host_flag = len(command) - 1 - command[::-1].index("-H")  # the last -H wins
    assert command[host_flag + 1] == "127.0.0.1"
    assert command[command.index("-p") + 1] == str(emulator.host_port)
    assert emulator.host_port > 0
    assert container._kwargs.get("network_mode") == "host"
    assert emulator.endpoint_url(container) == f"http://127.0.0.1:{emulator.host_port}"
    assert not emulator.runs_lambda


# --- starting without Docker --------------------------------------------------------------------------


@pytest.mark.parametrize("emulator_class", [LocalStackEmulator, MotoContainerEmulator])
def test_starting_a_container_backend_without_docker_raises_docker_unavailable(
    monkeypatch: pytest.MonkeyPatch, emulator_class: type[LocalStackEmulator] | type[MotoContainerEmulator]
) -> None:
    monkeypatch.setattr(containers_module, "docker_status", lambda: (False, "no Docker daemon answers (test)"))

    def must_not_build(self: object) -> None:
        raise AssertionError("build_container() was called although Docker is unavailable")

    monkeypatch.setattr(emulator_class, "build_container", must_not_build)
    emulator = emulator_class()
    with pytest.raises(DockerUnavailable) as refused:
        emulator.start()
    message = str(refused.value)
    assert "needs Docker" in message
    assert "no Docker daemon answers (test)" in message
    assert emulator_class.name in message
    with pytest.raises(RuntimeError):
        _ = emulator.target


# --- endpoint backend -----------------------------------------------------------------------------------


def closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_endpoint_without_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=ENDPOINT_VAR):
        EndpointEmulator().start()


def test_endpoint_url_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_VAR, "http://127.0.0.1:4566")
    assert EndpointEmulator().endpoint_url == "http://127.0.0.1:4566"


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:4566", "x"])
def test_endpoint_url_without_http_scheme_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="http://"):
        EndpointEmulator(url).start()


def test_endpoint_where_nothing_listens_is_unreachable_quickly() -> None:
    port = closed_loopback_port()
    emulator = EndpointEmulator(f"http://127.0.0.1:{port}").with_startup_timeout(0.5)
    started = time.monotonic()
    with pytest.raises(EmulatorUnreachable) as unreachable:
        emulator.start()
    assert time.monotonic() - started < 5
    assert str(port) in str(unreachable.value)
