"""Server settings: database URLs get tokentrail's drivers; environment and overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tokentrail.core import ValidationError
from tokentrail.server import ServerSettings
from tokentrail.server.settings import normalize_database_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u:p@h:5433/db?sslmode=require", "postgresql+psycopg://u:p@h:5433/db?sslmode=require"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_urls_are_normalised(given, expected):
    assert normalize_database_url(given) == expected


def test_a_bare_path_is_a_sqlite_file(tmp_path):
    assert normalize_database_url(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"


@pytest.mark.parametrize("url", ["mysql://x/y", "postgresql+asyncpg://x/y", "sqlite://", "sqlite:///:memory:", " "])
def test_unsupported_urls_are_refused(url):
    with pytest.raises(ValidationError) as info:
        normalize_database_url(url)
    assert info.value.field == "database_url"


def test_default_database_is_the_sdk_file():
    settings = ServerSettings.load(env={})
    home = Path(os.environ["TOKENTRAIL_HOME"]).resolve()
    assert settings.database_url == f"sqlite:///{home / 'tokentrail.db'}"
    assert (settings.host, settings.port) == ("127.0.0.1", 4319)


def test_environment_and_overrides():
    env = {"TOKENTRAIL_DB": "postgresql://a@b/c", "TOKENTRAIL_PORT": "9000", "TOKENTRAIL_ADMIN_KEY": "k" * 24}
    settings = ServerSettings.load(env=env, port=9100)
    assert settings.database_url == "postgresql+psycopg://a@b/c" and settings.port == 9100
    assert settings.admin_key == "k" * 24 and settings.is_postgres
    assert ServerSettings.load(env=settings.to_env()) == settings


@pytest.mark.parametrize(
    ("values", "field"),
    [({"port": 0}, "port"), ({"max_body_bytes": 0}, "max_body_bytes"), ({"admin_key": "short"}, "admin_key")],
)
def test_bad_settings_name_the_field(values, field):
    with pytest.raises(ValidationError) as info:
        ServerSettings.load(env={}, **values)
    assert info.value.field == field
    with pytest.raises(ValidationError):
        ServerSettings.load(env={"TOKENTRAIL_PORT": "http"})
