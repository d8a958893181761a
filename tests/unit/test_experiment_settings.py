"""Bad experiment configuration fails with one clear line, before anything is touched."""

from __future__ import annotations

import pytest

from experiments import settings
from experiments.actions import clear_api_faults, wipe_prefix
from experiments.tolerances import within_slo
from provisioning.exceptions import ConfigError, UnsafeTargetError

STACK = {
    "endpoint_url": "http://127.0.0.1:1",
    "production_bucket": "p-production",
    "backup_bucket": "p-backup",
    "topic_arn": "arn:aws:sns:us-east-1:123456789012:t",
    "function_name": "p-healer",
    "log_group": "/aws/lambda/p-healer",
    "dead_letter_queue_url": "http://127.0.0.1:1/123456789012/q",
}


def test_missing_stack_keys_are_named():
    with pytest.raises(ConfigError, match="missing backup_bucket, topic_arn") as caught:
        settings.load({"production_bucket": "p-production"})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_keys_per_action", "lots", "max_keys_per_action='lots' is not a whole number"),
        ("max_keys_per_action", -1, "max_keys_per_action=-1 must not be negative"),
    ],
)
def test_bad_numbers_are_refused(key, value, message):
    with pytest.raises(ConfigError, match=message):
        settings.load({**STACK, key: value})


def test_blast_radius_cap_refuses_an_action_over_it():
    config = settings.load({**STACK, "max_keys_per_action": 10})
    with pytest.raises(ConfigError, match="would touch 11 keys, over max_keys_per_action=10"):
        config.cap(11, "delete_objects")


def test_a_non_loopback_stack_is_refused_without_opt_in():
    config = settings.load({**STACK, "endpoint_url": "http://s3sh-guard-test.invalid:4566"})
    with pytest.raises(UnsafeTargetError, match="not a loopback endpoint"):
        config.ensure_safe()


def test_a_non_loopback_stack_needs_every_bucket_named():
    config = settings.load(
        {
            **STACK,
            "endpoint_url": "http://s3sh-guard-test.invalid:4566",
            "allow_remote": "1",
            "allowed_buckets": "p-production",
        }
    )
    with pytest.raises(UnsafeTargetError, match="p-backup not named"):
        config.ensure_safe()


def test_wipe_prefix_refuses_an_empty_prefix_before_any_request():
    with pytest.raises(ConfigError, match="wipe_prefix needs a non-empty prefix"):
        wipe_prefix("", configuration=STACK)


def test_fault_actions_need_a_loopback_proxy():
    with pytest.raises(ConfigError, match="no fault proxy"):
        clear_api_faults(configuration=STACK)
    with pytest.raises(ConfigError, match="is not a loopback address"):
        clear_api_faults(configuration={**STACK, "fault_proxy_url": "http://s3sh-guard-test.invalid:1"})


def test_slo_tolerance_says_what_missed(caplog):
    value = {"after_method": True, "healed": 9, "lost": 1, "corrupted": 0, "p99_s": 12.5, "lost_keys": ["a.txt"]}
    assert within_slo(value, p99_s=10) is False
    assert "1 object(s) lost or corrupted (allowed 0): ['a.txt']" in caplog.text
    assert "time-to-heal p99 12.50s, over by 2.50s (SLO 10s)" in caplog.text


def test_slo_tolerance_is_not_vacuous_after_the_method():
    assert within_slo({"after_method": True, "healed": 0, "lost": 0, "corrupted": 0, "p99_s": None}, p99_s=10) is False
    assert within_slo({"after_method": False, "faulted": 0}, p99_s=10) is True  # before any fault
