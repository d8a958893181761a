"""Deploy and destroy the self-healing stack. Both are idempotent."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from ..artifact import Artifact, build_healer_zip, store_artifact
from ..exceptions import StackError
from ..target import AwsTarget
from .names import StackNames
from .outputs import StackOutputs
from .policies import backup_bucket_policy, healer_policy, healer_trust_policy, topic_policy

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

LAMBDA_RUNTIME = "python3.11"
HANDLER = "healer.handler.lambda_handler"
SWEEP_HANDLER = "healer.sweep.lambda_handler"
SWEEP_SCHEDULE = "rate(5 minutes)"
SWEEP_TIMEOUT_S = 900
FUNCTION_TIMEOUT_S = 60
LOG_RETENTION_DAYS = 14
MAX_ASYNC_RETRIES = 2  # Lambda's default for asynchronous invocations
NOTIFICATION_ID = "s3-self-healing-object-removed"


def deploy_stack(
    target: AwsTarget,
    names: StackNames,
    *,
    subscribe_lambda: bool,
    extra_environment: dict[str, str] | None = None,
) -> StackOutputs:
    """Create or update every resource of the stack and return its outputs.

    ``subscribe_lambda`` subscribes the function to the topic (backends that run Lambda);
    otherwise the local runtime subscribes itself when it starts.
    """
    try:
        return _deploy(target, names, subscribe_lambda, extra_environment or {})
    except ClientError as exc:
        raise StackError(f"deploying stack {names.prefix!r} failed: {exc}") from exc


def _deploy(target: AwsTarget, names: StackNames, subscribe_lambda: bool, extra_env: dict[str, str]) -> StackOutputs:
    account = target.client("sts").get_caller_identity()["Account"]
    s3, sns, sqs, iam, lam, logs = (
        target.s3(),
        target.sns(),
        target.sqs(),
        target.iam(),
        target.lambda_(),
        target.logs(),
    )

    _create_bucket(s3, names.production_bucket, target.region)
    _create_bucket(s3, names.backup_bucket, target.region)
    s3.put_bucket_versioning(Bucket=names.backup_bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(Bucket=names.backup_bucket, Policy=json.dumps(backup_bucket_policy(names)))

    queue_url = sqs.create_queue(QueueName=names.dead_letter_queue, Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    for group in (names.log_group, names.sweep_log_group):
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        logs.put_retention_policy(logGroupName=group, retentionInDays=LOG_RETENTION_DAYS)

    role_arn = _ensure_role(iam, names, account, target.region)
    environment = {
        "PRODUCTION_BUCKET": names.production_bucket,
        "BACKUP_BUCKET": names.backup_bucket,
        "DEAD_LETTER_QUEUE_URL": queue_url,
        **extra_env,
    }
    artifact = build_healer_zip()
    store_artifact(artifact)  # the local runtime finds the code by its hash
    function_arn = _ensure_function(lam, names.function, HANDLER, artifact, role_arn, environment)
    sweep_arn = _ensure_function(lam, names.sweep_function, SWEEP_HANDLER, artifact, role_arn, environment)
    for function in (names.function, names.sweep_function):
        lam.put_function_event_invoke_config(
            FunctionName=function,
            MaximumRetryAttempts=MAX_ASYNC_RETRIES,
            DestinationConfig={"OnFailure": {"Destination": queue_arn}},
        )
    _schedule_sweep(target.client("events"), lam, names, sweep_arn)

    topic_arn = sns.create_topic(Name=names.topic)["TopicArn"]
    sns.set_topic_attributes(
        TopicArn=topic_arn,
        AttributeName="Policy",
        AttributeValue=json.dumps(topic_policy(names, topic_arn, account=account)),
    )
    if subscribe_lambda:
        _subscribe_function(sns, lam, topic_arn, function_arn, names)
    s3.put_bucket_notification_configuration(
        Bucket=names.production_bucket,
        NotificationConfiguration={
            "TopicConfigurations": [{"Id": NOTIFICATION_ID, "TopicArn": topic_arn, "Events": ["s3:ObjectRemoved:*"]}]
        },
    )
    return StackOutputs(
        endpoint_url=target.endpoint_url,
        region=target.region,
        production_bucket=names.production_bucket,
        backup_bucket=names.backup_bucket,
        topic_arn=topic_arn,
        function_name=names.function,
        log_group=names.log_group,
        dead_letter_queue_url=queue_url,
        stack_prefix=names.prefix,
        function_arn=function_arn,
        dead_letter_queue_arn=queue_arn,
        sweep_function_name=names.sweep_function,
        sweep_log_group=names.sweep_log_group,
    )


def _create_bucket(s3: S3Client, bucket: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(**kwargs)


def _ensure_role(iam: Any, names: StackNames, account: str, region: str) -> str:
    try:
        role_arn: str = iam.create_role(
            RoleName=names.role, AssumeRolePolicyDocument=json.dumps(healer_trust_policy())
        )["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role_arn = iam.get_role(RoleName=names.role)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=names.role,
        PolicyName=names.policy,
        PolicyDocument=json.dumps(healer_policy(names, account=account, region=region)),
    )
    return role_arn


def _role_not_ready(exc: BaseException) -> bool:
    # On AWS a new role takes seconds to become assumable by Lambda.
    return isinstance(exc, ClientError) and "role" in str(exc).lower() and "assume" in str(exc).lower()


@retry(retry=retry_if_exception(_role_not_ready), stop=stop_after_delay(60), wait=wait_exponential(max=5), reraise=True)
def _ensure_function(
    lam: Any, name: str, handler: str, artifact: Artifact, role_arn: str, environment: dict[str, str]
) -> str:
    settings: dict[str, Any] = {
        "Role": role_arn,
        "Handler": handler,
        "Runtime": LAMBDA_RUNTIME,
        "Timeout": SWEEP_TIMEOUT_S if handler == SWEEP_HANDLER else FUNCTION_TIMEOUT_S,
        "MemorySize": 256,
        "Environment": {"Variables": environment},
    }
    try:
        created = lam.create_function(FunctionName=name, Code={"ZipFile": artifact.zip_bytes}, **settings)
        return str(created["FunctionArn"])
    except lam.exceptions.ResourceConflictException:
        lam.update_function_code(FunctionName=name, ZipFile=artifact.zip_bytes)
        updated = lam.update_function_configuration(FunctionName=name, **settings)
        return str(updated["FunctionArn"])


def _schedule_sweep(events: Any, lam: Any, names: StackNames, sweep_arn: str) -> None:
    """An EventBridge schedule runs the sweep; the local runtime reads the same rule."""
    rule_arn = events.put_rule(Name=names.sweep_schedule, ScheduleExpression=SWEEP_SCHEDULE, State="ENABLED")["RuleArn"]
    events.put_targets(Rule=names.sweep_schedule, Targets=[{"Id": "sweep", "Arn": sweep_arn}])
    with contextlib.suppress(lam.exceptions.ResourceConflictException):
        lam.add_permission(
            FunctionName=names.sweep_function,
            StatementId="schedule-invoke",
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=rule_arn,
        )


def _subscribe_function(sns: Any, lam: Any, topic_arn: str, function_arn: str, names: StackNames) -> None:
    with contextlib.suppress(lam.exceptions.ResourceConflictException):
        lam.add_permission(
            FunctionName=names.function,
            StatementId="sns-invoke",
            Action="lambda:InvokeFunction",
            Principal="sns.amazonaws.com",
            SourceArn=topic_arn,
        )
    sns.subscribe(TopicArn=topic_arn, Protocol="lambda", Endpoint=function_arn)


def destroy_stack(target: AwsTarget, names: StackNames) -> None:
    """Remove every resource of the stack; missing resources are skipped, not errors."""
    s3, sns, sqs, iam, lam, logs = (
        target.s3(),
        target.sns(),
        target.sqs(),
        target.iam(),
        target.lambda_(),
        target.logs(),
    )
    failures: list[str] = []

    def attempt(what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if "NotFound" in code or "NoSuch" in code or code in {"404", "ResourceNotFoundException"}:
                return None
            failures.append(f"{what}: {exc}")
            return None

    attempt(
        "bucket notification",
        s3.put_bucket_notification_configuration,
        Bucket=names.production_bucket,
        NotificationConfiguration={},
    )
    topic_arn = find_topic_arn(sns, names)
    if topic_arn:
        subscriptions = attempt("list subscriptions", sns.list_subscriptions_by_topic, TopicArn=topic_arn) or {}
        for subscription in subscriptions.get("Subscriptions", []):
            if subscription["SubscriptionArn"].startswith("arn:"):
                attempt("unsubscribe", sns.unsubscribe, SubscriptionArn=subscription["SubscriptionArn"])
        attempt("topic", sns.delete_topic, TopicArn=topic_arn)
    events = target.client("events")
    attempt("schedule targets", events.remove_targets, Rule=names.sweep_schedule, Ids=["sweep"])
    attempt("schedule", events.delete_rule, Name=names.sweep_schedule)
    for function in (names.function, names.sweep_function):
        attempt("event invoke config", lam.delete_function_event_invoke_config, FunctionName=function)
        attempt("function", lam.delete_function, FunctionName=function)
    attempt("role policy", iam.delete_role_policy, RoleName=names.role, PolicyName=names.policy)
    attempt("role", iam.delete_role, RoleName=names.role)
    for group in (names.log_group, names.sweep_log_group):
        attempt("log group", logs.delete_log_group, logGroupName=group)
    queue = attempt("queue url", sqs.get_queue_url, QueueName=names.dead_letter_queue)
    if queue:
        attempt("queue", sqs.delete_queue, QueueUrl=queue["QueueUrl"])
    attempt("backup bucket policy", s3.delete_bucket_policy, Bucket=names.backup_bucket)
    for bucket in (names.production_bucket, names.backup_bucket):
        attempt(f"empty {bucket}", _empty_bucket, s3, bucket)
        attempt(f"bucket {bucket}", s3.delete_bucket, Bucket=bucket)
    if failures:
        raise StackError(f"destroying stack {names.prefix!r} left resources behind: {'; '.join(failures)}")


def find_topic_arn(sns: Any, names: StackNames) -> str | None:
    """The stack's topic ARN, or None when it does not exist (looked up, never created)."""
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            if topic["TopicArn"].rsplit(":", 1)[-1] == names.topic:
                return str(topic["TopicArn"])
    return None


def _empty_bucket(s3: S3Client, bucket: str) -> None:
    """Delete every version and marker, a page at a time, from the front of the listing.

    Deleting while following pagination markers skips entries on some backends (moto), so
    each round lists the first page again, until the listing is empty or stops shrinking.
    """
    previous: set[tuple[str, str]] = set()
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=1000)
        doomed = {(v["Key"], v["VersionId"]) for v in page.get("Versions", []) + page.get("DeleteMarkers", [])}
        if not doomed:
            return
        if doomed == previous:
            raise StackError(f"bucket {bucket} does not empty: {len(doomed)} version(s) cannot be deleted")
        previous = doomed
        objects = [{"Key": key, "VersionId": version} for key, version in sorted(doomed)]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})  # type: ignore[typeddict-item]
