"""Stack names derived from a prefix, and the policies that keep the healer least-privileged."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from provisioning.exceptions import ConfigError
from provisioning.stack.names import StackNames
from provisioning.stack.policies import backup_bucket_policy, healer_policy, topic_policy

ACCOUNT = "123456789012"
REGION = "eu-west-1"
LONGEST_PREFIXES = ["a" * 40, "9" * 40, "a" + "-" * 39, "z0-" * 13 + "x"]

HEALER_ACTIONS = {
    "s3:GetObject",
    "s3:GetObjectTagging",
    "s3:ListBucket",
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:DeleteObjectVersion",
    "s3:ListBucketVersions",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
}


def is_valid_s3_bucket_name(name: str) -> bool:
    """S3's general purpose bucket naming rules (length, characters, reserved prefixes/suffixes)."""
    if not 3 <= len(name) <= 63:
        return False
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name) or ".." in name:
        return False
    try:
        ipaddress.ip_address(name)
        return False
    except ValueError:
        pass
    if name.startswith(("xn--", "sthree-", "amzn-s3-demo-")):
        return False
    return not name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy["Statement"]
    assert isinstance(found, list) and found, "a policy needs at least one statement"
    return found


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["a", "0", "s3sh", "main-001-abc123", "gw0-12-ffffff", *LONGEST_PREFIXES])
def test_good_prefixes_are_accepted(prefix: str) -> None:
    names = StackNames.from_prefix(prefix)
    assert names.prefix == prefix
    assert names.production_bucket.startswith(prefix)


@pytest.mark.parametrize(
    "prefix",
    ["", "Upper", "-leading-dash", "under_score", "dot.ted", "sp ace", "a" * 41, "é", "tab\tbed"],
)
def test_bad_prefixes_are_rejected_with_the_rule(prefix: str) -> None:
    with pytest.raises(ConfigError) as rejected:
        StackNames.from_prefix(prefix)
    message = str(rejected.value)
    assert "1-40 characters" in message
    assert "lowercase letters, digits and '-'" in message
    assert "starting with a letter or digit" in message


def test_prefix_with_trailing_newline_is_rejected() -> None:
    with pytest.raises(ConfigError):
        StackNames.from_prefix("abc\n")


@pytest.mark.parametrize("prefix", ["xn--stack", "sthree-stack", "amzn-s3-demo-stack"])
def test_prefix_that_s3_reserves_is_rejected(prefix: str) -> None:
    with pytest.raises(ConfigError):
        StackNames.from_prefix(prefix)


@pytest.mark.parametrize("prefix", LONGEST_PREFIXES)
def test_longest_allowed_prefix_gives_valid_bucket_names(prefix: str) -> None:
    names = StackNames.from_prefix(prefix)
    for bucket in (names.production_bucket, names.backup_bucket):
        assert len(bucket) <= 63, bucket
        assert is_valid_s3_bucket_name(bucket), bucket


@pytest.mark.parametrize("prefix", LONGEST_PREFIXES)
def test_longest_allowed_prefix_fits_every_other_aws_name_limit(prefix: str) -> None:
    names = StackNames.from_prefix(prefix)
    assert len(names.function) <= 64
    assert len(names.role) <= 64
    assert len(names.policy) <= 128
    assert len(names.dead_letter_queue) <= 80
    assert len(names.topic) <= 256
    assert len(names.log_group) <= 512


def test_every_name_derives_from_the_prefix_so_stacks_do_not_collide() -> None:
    first, second = StackNames.from_prefix("one"), StackNames.from_prefix("two")
    for field in ("production_bucket", "backup_bucket", "topic", "function", "role", "policy", "dead_letter_queue"):
        assert getattr(first, field).startswith("one-")
        assert getattr(first, field) != getattr(second, field)
    assert first.log_group == f"/aws/lambda/{first.function}"


def test_bucket_names_can_be_given_explicitly() -> None:
    names = StackNames.from_prefix("s3sh", production_bucket="my-prod", backup_bucket="my-backup")
    assert (names.production_bucket, names.backup_bucket) == ("my-prod", "my-backup")
    assert names.function == "s3sh-healer"


# --- healer policy ------------------------------------------------------------------------------


@pytest.fixture
def names() -> StackNames:
    return StackNames.from_prefix("s3sh-test")


@pytest.fixture
def policy(names: StackNames) -> dict[str, Any]:
    return healer_policy(names, account=ACCOUNT, region=REGION)


def test_healer_policy_statements_are_plain_allows(policy: dict[str, Any]) -> None:
    assert {statement["Effect"] for statement in statements(policy)} == {"Allow"}
    for statement in statements(policy):
        assert "NotAction" not in statement
        assert "NotResource" not in statement


def test_healer_policy_has_no_wildcard_action(policy: dict[str, Any]) -> None:
    for statement in statements(policy):
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{statement.get('Sid')}: {action}"
            assert not action.endswith(":*")


def test_healer_policy_has_no_wildcard_resource(policy: dict[str, Any]) -> None:
    for statement in statements(policy):
        for resource in as_list(statement["Resource"]):
            assert resource != "*", statement.get("Sid")
            # A wildcard is only allowed as the objects of a named bucket or the streams of a named group.
            head = resource.removesuffix("/*").removesuffix(":*")
            assert "*" not in head, f"{statement.get('Sid')}: {resource}"
            assert head.startswith("arn:aws:"), resource


def test_healer_policy_grants_exactly_the_listed_actions(policy: dict[str, Any]) -> None:
    granted = {action for statement in statements(policy) for action in as_list(statement["Action"])}
    assert granted == HEALER_ACTIONS


def test_healer_policy_deletes_nothing_but_production_delete_markers(names: StackNames, policy: dict[str, Any]) -> None:
    # The only delete is DeleteObjectVersion on production (removing a delete marker heals a
    # versioned bucket); nothing can delete from the backup.
    for statement in statements(policy):
        deletes = [action for action in as_list(statement["Action"]) if action.lower().startswith("s3:delete")]
        if deletes:
            assert deletes == ["s3:DeleteObjectVersion"]
            assert as_list(statement["Resource"]) == [f"arn:aws:s3:::{names.production_bucket}/*"]


def test_healer_policy_resources_are_only_the_stacks_own(names: StackNames, policy: dict[str, Any]) -> None:
    allowed = {
        f"arn:aws:s3:::{names.backup_bucket}",
        f"arn:aws:s3:::{names.backup_bucket}/*",
        f"arn:aws:s3:::{names.production_bucket}",
        f"arn:aws:s3:::{names.production_bucket}/*",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{names.log_group}:*",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{names.sweep_log_group}:*",
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:{names.dead_letter_queue}",
    }
    resources = {resource for statement in statements(policy) for resource in as_list(statement["Resource"])}
    assert resources <= allowed, resources - allowed


def test_healer_policy_writes_only_to_production_and_reads_backup(names: StackNames, policy: dict[str, Any]) -> None:
    backup_objects = f"arn:aws:s3:::{names.backup_bucket}/*"
    for statement in statements(policy):
        actions = set(as_list(statement["Action"]))
        resources = set(as_list(statement["Resource"]))
        if actions & {"s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObjectVersion"}:
            assert resources == {f"arn:aws:s3:::{names.production_bucket}/*"}
        if backup_objects in resources:
            assert actions <= {"s3:GetObject", "s3:GetObjectTagging"}


def test_healer_policy_uses_the_given_partition(names: StackNames) -> None:
    policy = healer_policy(names, account=ACCOUNT, region=REGION, partition="aws-cn")
    for statement in statements(policy):
        for resource in as_list(statement["Resource"]):
            assert resource.startswith("arn:aws-cn:")


# --- backup bucket and topic policies -----------------------------------------------------------------


def test_backup_bucket_policy_denies_deleting_backup_objects_and_versions(names: StackNames) -> None:
    backup_objects = f"arn:aws:s3:::{names.backup_bucket}/*"
    denied = [
        statement
        for statement in statements(backup_bucket_policy(names))
        if statement["Effect"] == "Deny" and backup_objects in as_list(statement["Resource"])
    ]
    assert denied, "no Deny statement covers the backup bucket's objects"
    actions = {action for statement in denied for action in as_list(statement["Action"])}
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion"} <= actions
    assert all(statement["Principal"] == "*" for statement in denied)
    assert all("Condition" not in statement for statement in denied)


def test_backup_bucket_policy_allows_nothing(names: StackNames) -> None:
    assert {statement["Effect"] for statement in statements(backup_bucket_policy(names))} == {"Deny"}


def test_topic_policy_lets_only_s3_publish_for_the_production_bucket(names: StackNames) -> None:
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{names.topic}"
    policy = topic_policy(names, topic_arn, account=ACCOUNT)
    allowed = [statement for statement in statements(policy) if statement["Effect"] == "Allow"]
    assert len(allowed) == 1
    (statement,) = allowed
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert as_list(statement["Action"]) == ["sns:Publish"]
    assert as_list(statement["Resource"]) == [topic_arn]
    assert statement["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:s3:::{names.production_bucket}"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
