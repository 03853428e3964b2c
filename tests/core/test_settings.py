from __future__ import annotations

from pathlib import Path

import pytest

from tokentrail.core import ValidationError
from tokentrail.core.settings import Settings


def test_defaults_write_to_home_sqlite(tmp_path):
    settings = Settings.load(env={"TOKENTRAIL_HOME": str(tmp_path)})
    assert settings.sinks == ("sqlite",)
    assert settings.database_path == tmp_path / "tokentrail.db"
    assert settings.capture_content is False


def test_environment_values_are_cast():
    env = {
        "TOKENTRAIL_SINKS": "sqlite, log",
        "TOKENTRAIL_CAPTURE_CONTENT": "true",
        "TOKENTRAIL_QUEUE_SIZE": "42",
        "TOKENTRAIL_FLUSH_INTERVAL": "0.5",
        "TOKENTRAIL_SERVICE_NAME": "checkout",
        "TOKENTRAIL_HOME": "/tmp/tt",
    }
    settings = Settings.load(env=env)
    assert settings.sinks == ("sqlite", "log")
    assert settings.capture_content is True
    assert settings.queue_size == 42
    assert settings.flush_interval == 0.5
    assert settings.service_name == "checkout"
    assert settings.home_path == Path("/tmp/tt")


def test_keyword_arguments_win_over_environment():
    settings = Settings.load(env={"TOKENTRAIL_QUEUE_SIZE": "42"}, queue_size=7, sinks=["memory"])
    assert settings.queue_size == 7
    assert settings.sinks == ("memory",)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"TOKENTRAIL_QUEUE_SIZE": "lots"}, "TOKENTRAIL_QUEUE_SIZE"),
        ({"TOKENTRAIL_CAPTURE_CONTENT": "perhaps"}, "TOKENTRAIL_CAPTURE_CONTENT"),
        ({"TOKENTRAIL_QUEUE_SIZE": "0"}, "queue_size"),
        ({"TOKENTRAIL_SINKS": "collector"}, "collector_url"),
    ],
)
def test_bad_settings_name_the_field(env, field):
    with pytest.raises(ValidationError) as info:
        Settings.load(env=env)
    assert info.value.field == field


def test_unknown_keyword_is_refused():
    with pytest.raises(ValidationError) as info:
        Settings.load(env={}, colour="blue")
    assert info.value.field == "colour"
