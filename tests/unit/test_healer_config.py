"""The healer's configuration: two bucket names from the environment, validated with clear messages."""

from __future__ import annotations

import pytest

from healer.config import BACKUP_BUCKET_VAR, PRODUCTION_BUCKET_VAR, HealerConfig, load_config
from healer.exceptions import ConfigurationError, HealerError

GOOD_ENV = {PRODUCTION_BUCKET_VAR: "prod-bucket", BACKUP_BUCKET_VAR: "backup-bucket"}


def env_with(**overrides: str | None) -> dict[str, str]:
    """GOOD_ENV with some variables replaced, or removed when given None."""
    env = dict(GOOD_ENV)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_good_config_loads() -> None:
    assert load_config(GOOD_ENV) == HealerConfig(production_bucket="prod-bucket", backup_bucket="backup-bucket")


def test_surrounding_whitespace_is_ignored() -> None:
    config = load_config(env_with(PRODUCTION_BUCKET=" prod-bucket\n", BACKUP_BUCKET="\tbackup-bucket "))

    assert config == HealerConfig(production_bucket="prod-bucket", backup_bucket="backup-bucket")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("abc", id="shortest-3-chars"),
        pytest.param("a" * 63, id="longest-63-chars"),
        pytest.param("my.backup-bucket.2", id="dots-dashes-digits"),
        pytest.param("0bucket9", id="starts-and-ends-with-digit"),
    ],
)
def test_valid_bucket_names_are_accepted(name: str) -> None:
    assert load_config(env_with(BACKUP_BUCKET=name)).backup_bucket == name


def test_config_is_read_only_from_the_mapping_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PRODUCTION_BUCKET_VAR, "from-os-environ")
    monkeypatch.setenv(BACKUP_BUCKET_VAR, "also-from-os-environ")

    assert load_config(GOOD_ENV).production_bucket == "prod-bucket"


@pytest.mark.parametrize("variable", [PRODUCTION_BUCKET_VAR, BACKUP_BUCKET_VAR])
@pytest.mark.parametrize(
    "value",
    [pytest.param(None, id="missing"), pytest.param("", id="empty"), pytest.param("   ", id="blank")],
)
def test_missing_or_blank_bucket_is_an_error_naming_the_variable(variable: str, value: str | None) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(env_with(**{variable: value}))

    message = str(caught.value)
    assert variable in message
    assert "not set" in message
    other = BACKUP_BUCKET_VAR if variable == PRODUCTION_BUCKET_VAR else PRODUCTION_BUCKET_VAR
    assert other not in message  # points at the one that is wrong


def test_empty_environment_names_the_first_missing_variable() -> None:
    with pytest.raises(ConfigurationError, match=PRODUCTION_BUCKET_VAR):
        load_config({})


INVALID_NAMES = [
    pytest.param("Prod-Bucket", id="uppercase"),
    pytest.param("prod_bucket", id="underscore"),
    pytest.param("ab", id="too-short"),
    pytest.param("a" * 64, id="too-long"),
    pytest.param("-prod-bucket", id="leading-dash"),
    pytest.param("prod-bucket-", id="trailing-dash"),
    pytest.param(".prod-bucket", id="leading-dot"),
    pytest.param("prod bucket", id="inner-space"),
    pytest.param("s3://prod-bucket", id="s3-url"),
    pytest.param("arn:aws:s3:::prod-bucket", id="arn"),
    pytest.param("prod-bucket/prefix", id="with-prefix"),
]


@pytest.mark.parametrize("variable", [PRODUCTION_BUCKET_VAR, BACKUP_BUCKET_VAR])
@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_bucket_name_is_an_error_naming_the_variable_and_value(variable: str, name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(env_with(**{variable: name}))

    message = str(caught.value)
    assert variable in message
    assert repr(name) in message
    assert "not a valid S3 bucket name" in message


@pytest.mark.parametrize(
    "name",
    [pytest.param("prod..bucket", id="adjacent-periods"), pytest.param("192.168.5.4", id="ip-address")],
)
def test_names_s3_forbids_beyond_the_character_rules_are_rejected(name: str) -> None:
    with pytest.raises(ConfigurationError, match=BACKUP_BUCKET_VAR):
        load_config(env_with(BACKUP_BUCKET=name))


@pytest.mark.parametrize(
    ("production", "backup"),
    [
        pytest.param("same-bucket", "same-bucket", id="identical"),
        pytest.param("same-bucket", "  same-bucket ", id="identical-after-stripping"),
    ],
)
def test_identical_buckets_are_an_error_naming_both_variables(production: str, backup: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config({PRODUCTION_BUCKET_VAR: production, BACKUP_BUCKET_VAR: backup})

    message = str(caught.value)
    assert PRODUCTION_BUCKET_VAR in message
    assert BACKUP_BUCKET_VAR in message
    assert "'same-bucket'" in message


def test_configuration_error_is_a_healer_error() -> None:
    with pytest.raises(HealerError):
        load_config({})
