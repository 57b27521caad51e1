"""Settings: a value the processor cannot run with stops the start with an error that names the setting and
what it accepts; a typo never quietly changes what the worker does."""

import dataclasses
import os
import subprocess
import sys

import pytest

from processor.cli import _parser
from processor.config import Guarantee, Security, Settings, SettingsError

ALLOWED_GUARANTEES = "exactly_once, at_least_once"


@pytest.mark.parametrize(
    "value",
    [
        "exactly-once",  # a hyphen, as in the docs' prose: used to run at-least-once without a word
        "EXACTLY_ONCE",  # the enum's name, not its value
        "at-least-once",
        "",  # set but empty (e.g. a blank ConfigMap entry)
    ],
)
def test_a_guarantee_that_is_not_one_of_the_two_stops_the_start(value):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env={"PROCESSOR_PROCESSING_GUARANTEE": value})
    assert str(raised.value) == f"PROCESSOR_PROCESSING_GUARANTEE must be one of {ALLOWED_GUARANTEES}, not {value!r}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("at_least_once", Guarantee.AT_LEAST_ONCE),
        ("exactly_once", Guarantee.EXACTLY_ONCE),
    ],
)
def test_a_guarantee_from_the_environment_becomes_the_enum_and_still_equals_its_string(value, expected):
    settings = Settings.from_env(env={"PROCESSOR_PROCESSING_GUARANTEE": value})
    assert settings.processing_guarantee is expected
    assert settings.processing_guarantee == value  # the worker compares with the string


def test_the_default_guarantee_is_exactly_once_and_a_command_line_value_overrides_the_environment():
    assert Settings().processing_guarantee is Guarantee.EXACTLY_ONCE
    assert Settings.from_env(env={}).processing_guarantee is Guarantee.EXACTLY_ONCE
    env = {"PROCESSOR_PROCESSING_GUARANTEE": "exactly_once"}
    assert Settings.from_env(env=env, processing_guarantee="at_least_once").processing_guarantee == "at_least_once"


@pytest.mark.parametrize("guarantee", list(Guarantee))
def test_the_run_flag_accepts_every_guarantee(guarantee):
    args = _parser().parse_args(["run", "--processing-guarantee", guarantee.value])
    assert Settings.from_env(env={}, processing_guarantee=args.processing_guarantee).processing_guarantee is guarantee


def test_a_bad_guarantee_built_in_code_is_refused_too():
    with pytest.raises(SettingsError, match="PROCESSOR_PROCESSING_GUARANTEE"):
        Settings(processing_guarantee="exactly-once")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="PROCESSOR_PROCESSING_GUARANTEE"):
        dataclasses.replace(Settings(), processing_guarantee="once")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PROCESSOR_PARTITIONS", "six", "PROCESSOR_PARTITIONS must be a whole number, not 'six'"),
        ("PROCESSOR_PARTITIONS", "", "PROCESSOR_PARTITIONS must be a whole number, not ''"),
        ("PROCESSOR_METRICS_PORT", "9400.0", "PROCESSOR_METRICS_PORT must be a whole number, not '9400.0'"),
        ("PROCESSOR_BATCH_TIMEOUT_MS", "200ms", "PROCESSOR_BATCH_TIMEOUT_MS must be a whole number, not '200ms'"),
        ("PROCESSOR_PARTITIONS", "0", "PROCESSOR_PARTITIONS must be at least 1, not 0"),
        ("PROCESSOR_BATCH_MAX_RECORDS", "0", "PROCESSOR_BATCH_MAX_RECORDS must be at least 1, not 0"),
        ("PROCESSOR_BATCH_TIMEOUT_MS", "-1", "PROCESSOR_BATCH_TIMEOUT_MS must be at least 0, not -1"),
        ("PROCESSOR_LINGER_MS", "-5", "PROCESSOR_LINGER_MS must be at least 0, not -5"),
        ("PROCESSOR_MAX_BATCH_BYTES", "0", "PROCESSOR_MAX_BATCH_BYTES must be at least 1, not 0"),
        ("PROCESSOR_MAX_RECORD_BYTES", "-262144", "PROCESSOR_MAX_RECORD_BYTES must be at least 1, not -262144"),
        ("PROCESSOR_SHUTDOWN_TIMEOUT_S", "-30", "PROCESSOR_SHUTDOWN_TIMEOUT_S must be at least 0, not -30"),
        ("PROCESSOR_DUPLICATE_WINDOW_DAYS", "-1", "PROCESSOR_DUPLICATE_WINDOW_DAYS must be at least 0, not -1"),
        ("PROCESSOR_METRICS_PORT", "-1", "PROCESSOR_METRICS_PORT must be between 0 and 65535, not -1"),
        ("PROCESSOR_METRICS_PORT", "65536", "PROCESSOR_METRICS_PORT must be between 0 and 65535, not 65536"),
    ],
)
def test_a_number_that_does_not_parse_or_is_out_of_range_names_its_variable(variable, value, message):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env={variable: value})
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"partitions": 0}, "PROCESSOR_PARTITIONS must be at least 1, not 0"),  # processor topics --partitions 0
        ({"metrics_port": 70000}, "PROCESSOR_METRICS_PORT must be between 0 and 65535, not 70000"),
        ({"batch_max_records": 2.5}, "PROCESSOR_BATCH_MAX_RECORDS must be a whole number, not 2.5"),
        ({"linger_ms": True}, "PROCESSOR_LINGER_MS must be a whole number, not True"),
    ],
)
def test_numbers_from_the_command_line_or_code_are_checked_the_same_way(override, message):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env={}, **override)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"PROCESSOR_METRICS_PORT": "0"}, "metrics_port", 0),  # 0: any free port (tests, the demo)
        ({"PROCESSOR_METRICS_PORT": "65535"}, "metrics_port", 65535),
        ({"PROCESSOR_PARTITIONS": "1"}, "partitions", 1),
        ({"PROCESSOR_DUPLICATE_WINDOW_DAYS": "0"}, "duplicate_window_days", 0),  # 0 turns the check off
        ({"PROCESSOR_BATCH_TIMEOUT_MS": "0"}, "batch_timeout_ms", 0),
        ({"PROCESSOR_SHUTDOWN_TIMEOUT_S": " 20 "}, "shutdown_timeout_s", 20),  # as int() reads it
        ({"PROCESSOR_MAX_BATCH_BYTES": "1_048_576"}, "max_batch_bytes", 1_048_576),
    ],
)
def test_numbers_at_their_limits_are_accepted_and_parsed(env, field, expected):
    assert getattr(Settings.from_env(env=env), field) == expected


def test_the_settings_the_integration_tests_build_are_valid():
    settings = Settings(metrics_port=0, partitions=2, batch_timeout_ms=100, duplicate_window_days=0)
    assert (settings.metrics_port, settings.partitions, settings.duplicate_window_days) == (0, 2, 0)
    assert dataclasses.replace(settings, partitions=4).partitions == 4


def test_every_numeric_setting_is_checked():
    numeric = {f.name for f in dataclasses.fields(Settings) if isinstance(f.default, int)}
    checked = {f.name for f in dataclasses.fields(Settings) if "range" in f.metadata}
    assert numeric == checked


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL-SSL"},
            "KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, not 'SASL-SSL'",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-1"},
            "KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 with SASL, not 'SCRAM-SHA-1'",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "hunter2"},
            "KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 with SASL, not unset",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_PASSWORD": "hunter2"},
            "SASL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
    ],
)
def test_kafka_security_settings_are_checked_and_the_password_never_appears(env, message):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env=env)
    assert str(raised.value) == message
    assert "hunter2" not in str(raised.value)


def test_the_password_stays_out_of_repr():
    security = Security("SASL_SSL", "SCRAM-SHA-512", "coder", "hunter2")
    assert "hunter2" not in repr(security) and "hunter2" not in repr(Settings(security=security))


def test_a_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)  # callers that caught ValueError still do


def test_processor_run_with_a_hyphenated_guarantee_exits_with_one_line_before_connecting():
    env = {
        **os.environ,
        "PROCESSOR_PROCESSING_GUARANTEE": "exactly-once",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # nothing listens there: a start that got this far would hang
        "PROCESSOR_METRICS_PORT": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "processor", "run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"processor: PROCESSOR_PROCESSING_GUARANTEE must be one of {ALLOWED_GUARANTEES}, not 'exactly-once'"
    )
