"""The deployed stack grants the healer exactly what it needs, and an enforcing emulator proves it.

Part 1 reads the deployed policies back from the session emulator and checks their text.
Part 2 runs a separate moto with IAM enforcement on and calls S3/SQS as a user holding exactly
``healer_policy``. Part 3 heals with distinctive credentials and looks for them in every log
event and dead letter.

moto and IAM: moto checks no permissions until it has answered INITIAL_NO_AUTH_ACTION_COUNT
requests (of any service); from then on every request must be signed with the access key of an
IAM user it knows, and is allowed only by that user's identity policies (moto has no root
credentials). Object requests are also checked against the bucket policy. moto evaluates
CloudWatch Logs permissions against the resource ``*`` only, so the healer's log-group scoped
``logs:*`` statements cannot be exercised there (see the report); S3 and SQS are resource-scoped.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.exceptions import ClientError
from tenacity import Retrying, stop_after_delay, wait_fixed

from provisioning.emulators import EmbeddedEmulator
from provisioning.observe import delete_keys, wait_for_heal
from provisioning.pipeline import Pipeline
from provisioning.stack import StackNames
from provisioning.stack.policies import backup_bucket_policy, healer_policy
from provisioning.target import AwsTarget

pytestmark = pytest.mark.e2e

EXPECTED_ACTIONS = {
    "s3:GetObject",
    "s3:GetObjectTagging",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:DeleteObjectVersion",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
}
CREDENTIAL_WORDS = ("SECRET", "TOKEN", "PASSWORD", "ACCESS_KEY")
LEAKY_ACCESS_KEY = "AKIDSHOULDNOTLEAK0001"
LEAKY_SECRET = "secret-should-not-leak-0123456789"  # a marker to look for, not a secret


def as_document(value: Any) -> dict[str, Any]:
    """A policy document as IAM/S3 return it: a dict, JSON, or URL-encoded JSON."""
    if isinstance(value, dict):
        return value
    text = value if value.lstrip().startswith("{") else unquote(value)
    document: dict[str, Any] = json.loads(text)
    return document


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return [found] if isinstance(found, dict) else list(found)


def error_code(exc: ClientError) -> tuple[str, int]:
    return str(exc.response["Error"]["Code"]), int(exc.response["ResponseMetadata"]["HTTPStatusCode"])


def assert_denied(call: Any, *, bare_403: bool = False, **kwargs: Any) -> None:
    """The call is refused for lack of permission (not for a bad signature or anything else)."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    code, status = error_code(caught.value)
    message = str(caught.value.response["Error"].get("Message", ""))
    assert status == 403, (code, message)
    if code in {"AccessDenied", "AccessDeniedException"}:
        return
    # moto's query-protocol services (SQS) send the AccessDenied inside a body botocore cannot
    # parse: the code is then "403" and the XML is in the message.
    if code == "403" and "<Code>AccessDenied</Code>" in message:
        return
    # moto answers an object request that a bucket policy denies with a bodiless 403.
    assert bare_403 and code == "403" and message in {"", "Forbidden"}, (code, message)


# --- part 1: what is deployed ------------------------------------------------------------------------------


@pytest.fixture
def deployed(make_pipeline: Any) -> Pipeline:
    pipeline: Pipeline = make_pipeline(objects=5)
    return pipeline


def test_role_policy_is_least_privilege(deployed: Pipeline) -> None:
    iam = deployed.target.iam()
    names = deployed.names
    document = as_document(iam.get_role_policy(RoleName=names.role, PolicyName=names.policy)["PolicyDocument"])
    production_objects = f"arn:aws:s3:::{names.production_bucket}/*"
    backup_arns = {f"arn:aws:s3:::{names.backup_bucket}", f"arn:aws:s3:::{names.backup_bucket}/*"}

    seen: set[str] = set()
    for statement in statements(document):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement, statement
        actions, resources = as_list(statement["Action"]), as_list(statement["Resource"])
        seen.update(actions)
        assert not [action for action in actions if "*" in action], f"wildcard action in {statement}"
        assert "*" not in resources, f"bare * resource in {statement}"
        assert all(names.prefix in resource for resource in resources), f"resource of another stack: {statement}"
        beyond = set(actions) - EXPECTED_ACTIONS
        assert not beyond, f"actions beyond the healer's needs: {sorted(beyond)}"
        for action in actions:
            if action.startswith("s3:Delete"):
                assert action == "s3:DeleteObjectVersion", f"{action} granted"
                assert resources == [production_objects], f"{action} on {resources}"
            if action.startswith(("s3:Put", "s3:Delete")):
                assert not backup_arns & set(resources), f"{action} may write to the backup: {statement}"
    assert seen == EXPECTED_ACTIONS

    assert iam.list_role_policies(RoleName=names.role)["PolicyNames"] == [names.policy]
    assert iam.list_attached_role_policies(RoleName=names.role)["AttachedPolicies"] == []
    trust = as_document(iam.get_role(RoleName=names.role)["Role"]["AssumeRolePolicyDocument"])
    assert [statement["Principal"] for statement in statements(trust)] == [{"Service": "lambda.amazonaws.com"}]


def test_backup_bucket_is_versioned_and_undeletable(deployed: Pipeline) -> None:
    s3 = deployed.target.s3()
    backup = deployed.names.backup_bucket

    assert s3.get_bucket_versioning(Bucket=backup).get("Status") == "Enabled"
    document = as_document(s3.get_bucket_policy(Bucket=backup)["Policy"])
    denials = [
        statement
        for statement in statements(document)
        if statement["Effect"] == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and f"arn:aws:s3:::{backup}/*" in as_list(statement["Resource"])
    ]
    denied = {action for statement in denials for action in as_list(statement["Action"])}
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion"} <= denied
    assert not any("Condition" in statement for statement in denials), "the denial must be unconditional"


def test_functions_hold_no_credentials(deployed: Pipeline) -> None:
    lam = deployed.target.lambda_()
    role_arn = deployed.target.iam().get_role(RoleName=deployed.names.role)["Role"]["Arn"]
    for function in (deployed.names.function, deployed.names.sweep_function):
        configuration = lam.get_function_configuration(FunctionName=function)
        variables = configuration.get("Environment", {}).get("Variables", {})
        assert variables, f"{function} has no environment at all"
        leaky = [name for name in variables if any(word in name.upper() for word in CREDENTIAL_WORDS)]
        assert not leaky, f"{function} holds credential-like variables {leaky}"
        assert configuration["Role"] == role_arn


# --- part 2: enforced by an emulator -------------------------------------------------------------------------


@dataclass
class Enforcing:
    names: StackNames
    open_names: StackNames  # a second stack whose backup has no bucket policy: IAM alone decides
    healer: AwsTarget
    open_healer: AwsTarget
    admin: AwsTarget  # Action * on Resource *: only a bucket policy can stop it
    queue_url: str
    other_queue_url: str

    def s3(self, who: AwsTarget) -> Any:
        return who.client("s3", retries={"mode": "standard", "max_attempts": 1})


AUTH_FREE_REQUESTS = 200  # more than the set-up below needs; the rest is used up on purpose


@pytest.fixture(scope="module")
def enforcing() -> Iterator[Enforcing]:
    emulator = EmbeddedEmulator().with_env("INITIAL_NO_AUTH_ACTION_COUNT", str(AUTH_FREE_REQUESTS))
    emulator.start()
    try:
        yield _set_up_enforcing(emulator.target)
    finally:
        emulator.stop()


def _user(iam: Any, name: str, policy: dict[str, Any], endpoint_url: str) -> AwsTarget:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return AwsTarget(
        endpoint_url=endpoint_url, access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"]
    )


def _set_up_enforcing(root: AwsTarget) -> Enforcing:
    # Everything here runs while moto still answers without checking (the first requests).
    assert root.endpoint_url
    account = root.client("sts").get_caller_identity()["Account"]
    names, open_names = StackNames.from_prefix("lp-enforced"), StackNames.from_prefix("lp-open")
    s3, iam, sqs = root.s3(), root.iam(), root.sqs()
    for stack in (names, open_names):
        for bucket in (stack.production_bucket, stack.backup_bucket):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=stack.backup_bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=stack.backup_bucket, Key="docs/kept.txt", Body=b"backup copy")
    s3.put_bucket_policy(Bucket=names.backup_bucket, Policy=json.dumps(backup_bucket_policy(names)))
    # A versioned production bucket with a delete marker: the one delete the healer may do.
    s3.put_bucket_versioning(Bucket=names.production_bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=names.production_bucket, Key="docs/marked.txt", Body=b"v1")
    s3.delete_object(Bucket=names.production_bucket, Key="docs/marked.txt")
    queue_url = sqs.create_queue(QueueName=names.dead_letter_queue)["QueueUrl"]
    other_queue_url = sqs.create_queue(QueueName="lp-someone-elses-queue")["QueueUrl"]
    healer = _user(iam, "healer", healer_policy(names, account=account, region=root.region), root.endpoint_url)
    open_healer = _user(
        iam, "open-healer", healer_policy(open_names, account=account, region=root.region), root.endpoint_url
    )
    admin = _user(
        iam,
        "admin",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
        root.endpoint_url,
    )
    _use_up_unchecked_requests(healer)
    return Enforcing(names, open_names, healer, open_healer, admin, queue_url, other_queue_url)


def _use_up_unchecked_requests(healer: AwsTarget) -> None:
    """Send requests the healer is not allowed until moto starts refusing one: enforcement is on."""
    s3 = healer.client("s3", retries={"mode": "standard", "max_attempts": 1})
    for _ in range(AUTH_FREE_REQUESTS + 1):
        try:
            s3.list_buckets()  # s3:ListAllMyBuckets: not granted
        except ClientError as exc:
            assert error_code(exc) == ("AccessDenied", 403)
            return
    raise AssertionError(f"moto still answered unchecked after {AUTH_FREE_REQUESTS} requests")


def test_healer_reads_the_backup(enforcing: Enforcing) -> None:
    s3 = enforcing.s3(enforcing.healer)
    backup = enforcing.names.backup_bucket

    assert s3.get_object(Bucket=backup, Key="docs/kept.txt")["Body"].read() == b"backup copy"
    assert s3.head_object(Bucket=backup, Key="docs/kept.txt")["ContentLength"] == len(b"backup copy")
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=backup)["Contents"]] == ["docs/kept.txt"]
    with pytest.raises(ClientError) as caught:  # ListBucket makes a missing key a 404, not a 403
        s3.get_object(Bucket=backup, Key="docs/never-backed-up.txt")
    assert error_code(caught.value) == ("NoSuchKey", 404)


def test_healer_restores_into_production_without_clobbering(enforcing: Enforcing) -> None:
    s3 = enforcing.s3(enforcing.healer)
    production = enforcing.names.production_bucket
    key = f"restored/{uuid.uuid4().hex}.txt"

    s3.put_object(Bucket=production, Key=key, Body=b"restored", IfNoneMatch="*")
    assert s3.get_object(Bucket=production, Key=key)["Body"].read() == b"restored"
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=production, Key=key, Body=b"again", IfNoneMatch="*")
    assert error_code(caught.value) == ("PreconditionFailed", 412), "denied instead of a no-clobber answer"


def test_healer_may_only_remove_delete_markers_in_production(enforcing: Enforcing) -> None:
    s3 = enforcing.s3(enforcing.healer)
    production = enforcing.names.production_bucket
    versions = s3.list_object_versions(Bucket=production, Prefix="docs/marked.txt")
    (marker,) = versions["DeleteMarkers"]

    assert_denied(s3.delete_object, Bucket=production, Key="docs/marked.txt")  # s3:DeleteObject: not granted
    s3.delete_object(Bucket=production, Key="docs/marked.txt", VersionId=marker["VersionId"])

    assert s3.get_object(Bucket=production, Key="docs/marked.txt")["Body"].read() == b"v1"


def test_healer_cannot_write_or_delete_in_the_backup(enforcing: Enforcing) -> None:
    s3 = enforcing.s3(enforcing.healer)
    backup = enforcing.names.backup_bucket
    assert_denied(s3.list_object_versions, Bucket=backup)  # ListBucketVersions: production only
    listed = enforcing.s3(enforcing.admin).list_object_versions(Bucket=backup, Prefix="docs/kept.txt")
    (version,) = listed["Versions"]

    assert_denied(s3.delete_object, bare_403=True, Bucket=backup, Key="docs/kept.txt")
    assert_denied(s3.delete_object, bare_403=True, Bucket=backup, Key="docs/kept.txt", VersionId=version["VersionId"])
    assert_denied(s3.put_object, Bucket=backup, Key="docs/kept.txt", Body=b"overwritten")
    assert_denied(s3.delete_bucket_policy, Bucket=backup)
    assert_denied(s3.put_bucket_versioning, Bucket=backup, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_object(Bucket=backup, Key="docs/kept.txt")["Body"].read() == b"backup copy"


def test_iam_alone_denies_backup_deletes_without_the_bucket_policy(enforcing: Enforcing) -> None:
    s3 = enforcing.s3(enforcing.open_healer)
    backup = enforcing.open_names.backup_bucket

    assert s3.get_object(Bucket=backup, Key="docs/kept.txt")["Body"].read() == b"backup copy"
    with pytest.raises(ClientError) as caught:
        s3.delete_object(Bucket=backup, Key="docs/kept.txt")
    assert error_code(caught.value) == ("AccessDenied", 403)


def test_bucket_policy_stops_even_an_administrator(enforcing: Enforcing) -> None:
    s3 = enforcing.s3(enforcing.admin)
    backup = enforcing.names.backup_bucket
    (version,) = s3.list_object_versions(Bucket=backup, Prefix="docs/kept.txt")["Versions"]

    assert_denied(s3.delete_object, bare_403=True, Bucket=backup, Key="docs/kept.txt")
    assert_denied(s3.delete_object, bare_403=True, Bucket=backup, Key="docs/kept.txt", VersionId=version["VersionId"])

    open_backup = enforcing.open_names.backup_bucket  # the control: no bucket policy, the admin may delete
    marker = s3.delete_object(Bucket=open_backup, Key="docs/kept.txt")
    assert marker.get("DeleteMarker") is True
    s3.delete_object(Bucket=open_backup, Key="docs/kept.txt", VersionId=marker["VersionId"])


def test_healer_dead_letters_only_to_its_own_queue(enforcing: Enforcing) -> None:
    sqs = enforcing.healer.client("sqs", retries={"mode": "standard", "max_attempts": 1})

    sqs.send_message(QueueUrl=enforcing.queue_url, MessageBody="{}")
    assert_denied(sqs.send_message, QueueUrl=enforcing.other_queue_url, MessageBody="{}")
    assert_denied(sqs.receive_message, QueueUrl=enforcing.queue_url)
    assert_denied(sqs.purge_queue, QueueUrl=enforcing.queue_url)


def test_healer_cannot_grant_itself_more_or_create_resources(enforcing: Enforcing) -> None:
    iam = enforcing.healer.client("iam", retries={"mode": "standard", "max_attempts": 1})
    s3 = enforcing.s3(enforcing.healer)
    sqs = enforcing.healer.client("sqs", retries={"mode": "standard", "max_attempts": 1})

    assert_denied(iam.list_users)
    assert_denied(iam.create_access_key, UserName="healer")
    assert_denied(
        iam.put_user_policy,
        UserName="healer",
        PolicyName="escalate",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    assert_denied(s3.create_bucket, Bucket="lp-healer-made-this")
    assert_denied(sqs.create_queue, QueueName="lp-healer-made-this")


# --- part 3: no credential leaks --------------------------------------------------------------------------------


def test_credentials_never_reach_logs_or_dead_letters(emulator: Any) -> None:
    target = AwsTarget(
        endpoint_url=emulator.target.endpoint_url, access_key_id=LEAKY_ACCESS_KEY, secret_access_key=LEAKY_SECRET
    )
    names = StackNames.from_prefix(f"leak-{uuid.uuid4().hex[:8]}")
    pipeline = Pipeline.up(target, names, runs_lambda=emulator.runs_lambda, objects=5, sweep_every_s=0)
    try:
        s3, sqs, logs = target.s3(), target.sqs(), target.logs()
        expected = {item.key: item for item in pipeline.seeded}
        victims = sorted(expected)[:3]
        sent_at = delete_keys(s3, names.production_bucket, victims)
        report = wait_for_heal(s3, names.production_bucket, expected, sent_at, timeout_s=30)
        assert report.healed == 3, report.summary()
        # Two dead letters: a rejected record, and an invocation that failed (key never backed up).
        target.sns().publish(TopicArn=pipeline.outputs.topic_arn, Message="not json at all")
        s3.put_object(Bucket=names.production_bucket, Key="never-backed-up.txt", Body=b"x")
        s3.delete_object(Bucket=names.production_bucket, Key="never-backed-up.txt")
        bodies = _dead_letter_bodies(sqs, pipeline.outputs.dead_letter_queue_url, at_least=2, timeout_s=45)
        if pipeline.runtime is not None:
            pipeline.runtime.flush_logs()
        messages = _all_log_messages(logs, names.log_group) + _all_log_messages(logs, names.sweep_log_group)
        assert any("never-backed-up.txt" in message for message in messages), "the failure was not logged"
        assert any("not json at all" in body for body in bodies)

        for secret in (LEAKY_ACCESS_KEY, LEAKY_SECRET):
            assert not [m for m in messages if secret in m], f"{secret!r} in the functions' log groups"
            assert not [b for b in bodies if secret in b], f"{secret!r} in the dead-letter queue"
        for function in (names.function, names.sweep_function):
            configuration = target.lambda_().get_function_configuration(FunctionName=function)
            assert LEAKY_SECRET not in json.dumps(configuration, default=str)
            assert LEAKY_ACCESS_KEY not in json.dumps(configuration, default=str)
    finally:
        pipeline.down()


def _all_log_messages(logs: Any, group: str) -> list[str]:
    messages: list[str] = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        messages.extend(event.get("message", "") for event in page.get("events", []))
    return messages


def _dead_letter_bodies(sqs: Any, queue_url: str, *, at_least: int, timeout_s: float) -> list[str]:
    """Raw bodies of the queue's messages, once there are ``at_least`` (read without deleting)."""
    seen: dict[str, str] = {}
    for attempt in Retrying(stop=stop_after_delay(timeout_s), wait=wait_fixed(0.5), reraise=True):
        with attempt:
            response = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=120, WaitTimeSeconds=0
            )
            seen.update({message["MessageId"]: message["Body"] for message in response.get("Messages", [])})
            assert len(seen) >= at_least, f"{len(seen)} dead letter(s) so far"
    time.sleep(0.5)  # anything that lands right behind them is scanned too
    response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=120)
    seen.update({message["MessageId"]: message["Body"] for message in response.get("Messages", [])})
    return list(seen.values())
