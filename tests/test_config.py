"""Configuration: defaults, one TOML file, secrets from env or files, problems with keys."""
from pathlib import Path

import pytest

from mailgate.config import ConfigError, Settings, load_settings


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "mailgate.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file():
    settings = load_settings(None, env={})
    assert settings.database_url == "sqlite:///var/mailgate.db"
    assert settings.storage.dir == Path("./var")
    assert settings.limits.max_attachment_size == 10 * 1024 * 1024
    assert "application/pdf" in settings.limits.allowed_types


def test_file_from_environment_variable(tmp_path):
    path = write(tmp_path, '[storage]\ndir = "/srv/mailgate"\n[threading]\nprefix = "HD"\n')
    settings = load_settings(None, env={"MAILGATE_CONFIG": str(path)})
    assert settings.storage.dir == Path("/srv/mailgate")
    assert settings.threading.prefix == "HD"
    assert settings.database_url == "sqlite:////srv/mailgate/mailgate.db"


def test_database_password_from_env_and_file(tmp_path):
    path = write(tmp_path, '[database]\nurl = "postgresql://mg@db.internal/mailgate"\n'
                 'password_env = "MG_DB_PASSWORD"\n')
    settings = load_settings(path, env={"MG_DB_PASSWORD": "s3cr/et"})
    assert settings.database_url == "postgresql://mg:s3cr%2Fet@db.internal/mailgate"
    secret = tmp_path / "dbpass"
    secret.write_text("from-file\n")
    path = write(tmp_path, '[database]\nurl = "postgresql://mg@db/m"\n'
                 f'password_file = "{secret}"\n')
    assert load_settings(path, env={}).database_url == "postgresql://mg:from-file@db/m"


def test_whole_url_from_env(tmp_path):
    path = write(tmp_path, '[database]\nurl_env = "DATABASE_URL"\n')
    settings = load_settings(path, env={"DATABASE_URL": "postgresql://x@y/z"})
    assert settings.database_url == "postgresql://x@y/z"


def test_every_problem_is_reported_with_its_key(tmp_path):
    path = write(tmp_path, '[database]\npassword_env = "MISSING"\n'
                 '[limits]\nmax_parts = "many"\nmax_depth = -1\nbogus = 1\n'
                 '[threading]\nforeign_sender = "drop"\nprefix = "M G"\n'
                 '[nosuch]\nx = 1\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    keys = {key for key, _ in info.value.problems}
    assert keys == {"database.password_env", "limits.max_parts", "limits.max_depth",
                    "limits.bogus", "threading.foreign_sender", "threading.prefix", "nosuch"}


def test_unreadable_or_invalid_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="mailgate.toml"):
        load_settings(write(tmp_path, "[storage\n"), env={})


def test_replace_for_tests():
    settings = Settings().replace(limits={"max_depth": 5})
    assert settings.limits.max_depth == 5 and settings.limits.max_parts == 500
