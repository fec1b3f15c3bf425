"""Configuration: autocall.toml, AUTOCALL_* variables over it, clear one-line errors, secrets masked."""

from __future__ import annotations

import os

import pytest

from autocall.config import Config, load_config
from autocall.errors import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "autocall.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment(tmp_path):
    config = load_config(environ={}, cwd=str(tmp_path))
    assert config.port == 4573 and config.host == "127.0.0.1" and config.grace_period == 30_000
    assert config.database == str(tmp_path / "autocall.db")


def test_file_in_working_directory_is_read_and_tables_group_keys(tmp_path):
    write(tmp_path, '[server]\nport = 4600\ngrace_period = "1m"\n[audio]\nvoice = "it"\n')
    config = load_config(environ={}, cwd=str(tmp_path))
    assert (config.port, config.grace_period, config.voice) == (4600, 60_000, "it")


def test_environment_overrides_the_file(tmp_path):
    write(tmp_path, "port = 4600\n")
    config = load_config(environ={"AUTOCALL_PORT": "4700", "AUTOCALL_MAX_CALL_DURATION": "10m"}, cwd=str(tmp_path))
    assert config.port == 4700 and config.max_call_duration == 600_000


def test_durations_accept_seconds_as_numbers(tmp_path):
    write(tmp_path, "env_timeout = 3\n")
    assert load_config(environ={}, cwd=str(tmp_path)).env_timeout == 3000


def test_relative_paths_are_relative_to_the_file_or_the_working_directory(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "conf.toml"
    path.write_text('sounds_dir = "sounds"\n')
    config = load_config(str(path), environ={"AUTOCALL_RECORDINGS_DIR": "rec"}, cwd=str(tmp_path))
    assert config.sounds_dir == str(folder / "sounds")
    assert config.recordings_dir == str(tmp_path / "rec")


@pytest.mark.parametrize("text, environ, message", [
    ("prot = 1\n", {}, "unknown setting 'prot' (did you mean 'port'?)"),
    ("port = \"many\"\n", {}, "port = 'many' is not valid; expected a whole number"),
    ("grace_period = \"soon\"\n", {}, "expected a duration such as 30s"),
    ("port = [\n", {}, "not valid TOML"),
    ("", {"AUTOCALL_SOUND_DIR": "x"}, "AUTOCALL_SOUND_DIR: unknown setting 'sound_dir' (did you mean 'sounds_dir'?)"),
])
def test_bad_settings_are_one_line_errors(tmp_path, text, environ, message):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(environ=environ, cwd=str(tmp_path))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config("nope.toml", environ={}, cwd=str(tmp_path))


def test_secret_is_never_shown(tmp_path):
    write(tmp_path, 'ami_secret = "hunter2"\n')
    config = load_config(environ={}, cwd=str(tmp_path))
    assert config.ami_secret == "hunter2"
    assert "hunter2" not in repr(config) and config.describe()["ami_secret"] == "***"
    with pytest.raises(ConfigError) as error:
        load_config(environ={"AUTOCALL_AMI_SECRET": "x", "AUTOCALL_PORT": "hunter2"}, cwd=str(tmp_path))
    assert "hunter2" in str(error.value)  # not a secret key: shown
    write(tmp_path, "ami_secret = 5.5\n")
    config = load_config(environ={}, cwd=str(tmp_path))
    assert isinstance(config, Config)


def test_non_setting_variables_are_ignored(tmp_path):
    config = load_config(environ={"AUTOCALL_DEBUG": "1", "AUTOCALL_CONFIG": os.devnull}, cwd=str(tmp_path))
    assert config.port == 4573


def test_allowed_peers_default_to_loopback_and_take_a_list_or_a_comma_separated_variable(tmp_path):
    assert load_config(environ={}, cwd=str(tmp_path)).allowed_peers == ("127.0.0.0/8", "::1/128")
    write(tmp_path, 'allowed_peers = ["10.0.0.5", "192.168.1.0/24"]\n')
    assert load_config(environ={}, cwd=str(tmp_path)).allowed_peers == ("10.0.0.5/32", "192.168.1.0/24")
    config = load_config(environ={"AUTOCALL_ALLOWED_PEERS": "127.0.0.1, 10.1.0.0/16"}, cwd=str(tmp_path))
    assert config.allowed_peers == ("127.0.0.1/32", "10.1.0.0/16")


@pytest.mark.parametrize("text", ['allowed_peers = ["10.0.0.300"]\n', 'allowed_peers = "pbx.example.com"\n',
                                  "allowed_peers = 5\n"])
def test_a_bad_allowed_peer_is_a_one_line_error(tmp_path, text):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(environ={}, cwd=str(tmp_path))
    assert "allowed_peers" in str(error.value) and "\n" not in str(error.value)
