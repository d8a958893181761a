"""IAM, bucket and topic policies: named resources and actions only, never ``*``."""

from __future__ import annotations

from typing import Any

from .names import StackNames

DENIED_BACKUP_ACTIONS = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration"]


def healer_trust_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def healer_policy(names: StackNames, *, account: str, region: str, partition: str = "aws") -> dict[str, Any]:
    """Least privilege for the healer: read backup, restore into production, log, dead-letter."""
    backup = f"arn:{partition}:s3:::{names.backup_bucket}"
    production = f"arn:{partition}:s3:::{names.production_bucket}"
    log_group = f"arn:{partition}:logs:{region}:{account}:log-group:{names.log_group}"
    sweep_log_group = f"arn:{partition}:logs:{region}:{account}:log-group:{names.sweep_log_group}"
    queue = f"arn:{partition}:sqs:{region}:{account}:{names.dead_letter_queue}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            # s3:GetObject also covers HEAD; s3:ListBucket makes a missing key answer 404, not 403.
            {
                "Sid": "ReadBackup",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectTagging"],
                "Resource": f"{backup}/*",
            },
            {"Sid": "ListBackup", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": backup},
            {
                "Sid": "RestoreProduction",
                "Effect": "Allow",
                # DeleteObjectVersion: a versioned bucket is healed by removing the delete marker.
                "Action": ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObjectVersion"],
                "Resource": f"{production}/*",
            },
            {
                "Sid": "ListProduction",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": production,
            },
            {
                "Sid": "WriteAuditLog",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [f"{log_group}:*", f"{sweep_log_group}:*"],
            },
            {"Sid": "DeadLetter", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": queue},
        ],
    }


def backup_bucket_policy(names: StackNames, partition: str = "aws") -> dict[str, Any]:
    """The backup is immutable from the data plane: nobody deletes objects or versions."""
    backup = f"arn:{partition}:s3:::{names.backup_bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyObjectDeletion",
                "Effect": "Deny",
                "Principal": "*",
                "Action": DENIED_BACKUP_ACTIONS,
                "Resource": [backup, f"{backup}/*"],
            }
        ],
    }


def topic_policy(names: StackNames, topic_arn: str, *, account: str, partition: str = "aws") -> dict[str, Any]:
    """Let only the production bucket (of this account) publish to the topic."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ProductionBucketPublishes",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:s3:::{names.production_bucket}"},
                    "StringEquals": {"aws:SourceAccount": account},
                },
            }
        ],
    }
