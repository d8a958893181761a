"""``python -m provisioning``: the commands users type, run as subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from provisioning.observe import list_etags
from provisioning.pipeline import Pipeline
from provisioning.stack import StackNames
from provisioning.target import AwsTarget

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "provisioning"]


def _run(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_up_prints_outputs_heals_a_delete_and_stops_cleanly_on_ctrl_c(tmp_path):
    started = time.monotonic()
    process = subprocess.Popen(
        [*CLI, "up", "--emulator", "embedded", "--objects", "200", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()  # the outputs, printed once ready
        ready_s = time.monotonic() - started
        outputs = json.loads(line)
        assert set(outputs) >= {
            "endpoint_url",
            "region",
            "production_bucket",
            "backup_bucket",
            "topic_arn",
            "function_name",
            "log_group",
            "dead_letter_queue_url",
        }
        print(f"\nup --objects 200 ready in {ready_s:.2f}s")
        target = AwsTarget(endpoint_url=outputs["endpoint_url"], region=outputs["region"])
        s3 = target.s3()
        keys = sorted(list_etags(s3, outputs["production_bucket"]))
        assert len(keys) == 200
        victim = keys[0]
        original = s3.get_object(Bucket=outputs["production_bucket"], Key=victim)["Body"].read()

        s3.delete_object(Bucket=outputs["production_bucket"], Key=victim)

        def body() -> bytes | None:
            try:
                return s3.get_object(Bucket=outputs["production_bucket"], Key=victim)["Body"].read()
            except s3.exceptions.NoSuchKey:
                return None

        restored = retry(
            stop=stop_after_delay(30),
            wait=wait_fixed(0.05),
            retry=retry_if_result(lambda b: b is None),
            retry_error_callback=lambda state: None,
        )(body)()
        assert restored == original
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        stderr = process.stderr.read()
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_wrong_flag_gets_a_usage_error_not_a_traceback():
    result = _run("up", "--objetcs", "5")
    assert result.returncode == 2
    assert "Error: No such option '--objetcs'. Did you mean '--objects'?" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["up", "--objects", "-3"], ["up", "--emulator", "nope"]], ids=["negative-objects", "unknown-emulator"]
)
def test_bad_values_are_rejected_with_one_clear_line(args):
    result = _run(*args)
    assert result.returncode == 2
    assert "Error: Invalid value" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_endpoint_is_one_clear_line():
    url = f"http://127.0.0.1:{_closed_port()}"
    result = _run("up", "--emulator", "endpoint", "--endpoint-url", url, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: nothing answers at " + url), result.stderr


def test_localstack_without_docker_says_so(monkeypatch):
    from provisioning.emulators.docker import docker_available

    if docker_available():
        pytest.skip("a Docker daemon answers here, so LocalStack would start")
    result = _run("up", "--emulator", "localstack", "--objects", "0")
    assert result.returncode == 1
    assert result.stderr.startswith("error: the localstack emulator needs Docker: no Docker daemon answers")


# A reserved .invalid name never resolves: even a broken guard could not send traffic anywhere.
REMOTE = "http://s3sh-guard-test.invalid:4566"


@pytest.mark.parametrize("command", ["up", "down"])
def test_non_loopback_endpoint_is_refused_without_opt_in(command):
    args = [command, "--endpoint-url", REMOTE] + (["--emulator", "endpoint"] if command == "up" else [])
    result = _run(*args)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: refusing to act on {REMOTE}: it is not a loopback endpoint"), result.stderr


def test_opt_in_still_requires_named_buckets():
    result = _run("down", "--endpoint-url", REMOTE, "--allow-remote")
    assert result.returncode == 2
    assert "--allow-remote needs --production-bucket and --backup-bucket" in result.stderr


def test_real_aws_is_refused_without_opt_in():
    result = _run("up", "--emulator", "aws", "--objects", "0")
    assert result.returncode == 1
    assert result.stderr.startswith("error: refusing to act on real AWS"), result.stderr


def test_down_removes_a_stack_from_an_endpoint_emulator(emulator, worker_id_prefix):
    names = StackNames.from_prefix(f"{worker_id_prefix}-cli-down")
    pipeline = Pipeline.up(emulator.target, names, runs_lambda=emulator.runs_lambda, objects=3)
    pipeline.down(destroy=False)  # leave the stack, stop only the runtime
    s3 = emulator.target.s3()
    assert names.production_bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}

    result = _run("down", "--endpoint-url", emulator.target.endpoint_url, "--prefix", names.prefix)

    assert result.returncode == 0, result.stderr
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert names.production_bucket not in buckets and names.backup_bucket not in buckets


def test_redrive_refeeds_the_dead_letter_queue_to_the_healer(make_pipeline):
    pipeline = make_pipeline(objects=0)
    s3 = pipeline.target.s3()
    key = "late backup/report.csv"
    s3.put_object(Bucket=pipeline.names.production_bucket, Key=key, Body=b"v1")
    s3.delete_object(Bucket=pipeline.names.production_bucket, Key=key)  # no backup yet: dead-lettered
    assert pipeline.runtime is not None and pipeline.runtime.wait_idle(30)
    assert pipeline.runtime.stats().dead_lettered == 1
    s3.put_object(Bucket=pipeline.names.backup_bucket, Key=key, Body=b"v1")  # the backup catches up

    result = _run("redrive", "--endpoint-url", pipeline.target.endpoint_url, "--prefix", pipeline.names.prefix)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"redriven": 1, "left_in_queue": 0}
    assert pipeline.runtime.wait_idle(30)
    assert s3.get_object(Bucket=pipeline.names.production_bucket, Key=key)["Body"].read() == b"v1"


def test_redrive_of_a_stack_that_does_not_exist_is_one_clear_line(emulator):
    result = _run("redrive", "--endpoint-url", emulator.target.endpoint_url, "--prefix", "no-such-stack")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
