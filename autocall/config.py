"""Configuration: ``autocall.toml`` (or ``--config``), each key overridable by an ``AUTOCALL_<KEY>`` variable."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from autocall.durations import parse_duration_ms
from autocall.errors import ConfigError, UserError
from autocall.peers import LOOPBACK, parse_networks
from autocall.services_config import EventRoute, ServiceConfig, parse_events, parse_services
from autocall.suggest import suggest

DEFAULT_FILE = "autocall.toml"
ENV_PREFIX = "AUTOCALL_"
# AUTOCALL_ variables that are not settings: the file to read, and the CLI's traceback switch.
NOT_SETTINGS = frozenset({ENV_PREFIX + "CONFIG", ENV_PREFIX + "DEBUG"})
SECRET_KEYS = frozenset({"ami_secret"})
_PATH_KEYS = frozenset({"database", "scripts_dir", "sounds_dir", "recordings_dir", "tts_cache_dir"})
_LIST_KEYS = frozenset({"allowed_peers"})
_DURATION_KEYS = frozenset({"grace_period", "max_call_duration", "env_timeout", "command_margin",
                            "ami_ping_interval", "dnc_max_age", "worker_lease"})
# Tables kept as tables (not flattened into keys), set in the file only: [services.NAME] and [events].
_TABLES = frozenset({"services", "events"})
_NO_TABLE: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class Config:
    """Every setting, with its default. Durations are milliseconds; paths are absolute after ``load``."""

    # storage
    database: str = "autocall.db"
    # FastAGI server
    host: str = "127.0.0.1"
    port: int = 4573
    allowed_peers: tuple = LOOPBACK
    scripts_dir: str = "."
    grace_period: int = 30_000
    env_timeout: int = 10_000
    max_line_length: int = 16_384
    command_margin: int = 10_000
    # calls
    max_call_duration: int = 3_600_000
    recordings_dir: str = "recordings"
    # audio
    sounds_dir: str = "sounds"
    tts_cache_dir: str = ""
    voice: str = "en-us"
    rate: int = 160
    currency: str = "EUR"           # of {x|money} in scripts that declare none (ISO 4217)
    tts_max_chars: int = 3_000
    sound_cache_max_mb: int = 2_048
    # outbound campaigns
    pbx: str = "sim"
    ami_secret: str = field(default="", repr=False)
    ami_ping_interval: int = 20_000
    channel_template: str = "PJSIP/{number}@trunk"
    outbound_context: str = "autocall-outbound"
    agi_url: str = "agi://127.0.0.1:4573"
    caller_id: str = ""
    worker_lease: int = 20_000          # a dialer silent this long is taken for dead; its attempts are settled
    country: str = ""              # two-letter code: how national numbers in contact lists are read
    dnc_max_age: int = 0           # a --dnc file older than this refuses the run (0: no limit)
    # logging
    log_level: str = "info"
    # privacy: call records, recordings and campaign attempts older than this are deleted (0: kept)
    retention: int = 0
    # web services and events (autocall.services_config)
    services: Mapping[str, ServiceConfig] = field(default_factory=lambda: _NO_TABLE, repr=False)
    events: Mapping[str, EventRoute] = field(default_factory=lambda: _NO_TABLE)

    def describe(self) -> dict[str, object]:
        """The settings for display, secrets masked."""
        shown: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "services":
                value = {name: service.describe() for name, service in value.items()}
            elif f.name == "events":
                value = {name: {"service": route.service, "path": route.path} for name, route in value.items()}
            elif f.name in SECRET_KEYS and value:
                value = "***"
            shown[f.name] = value
        return shown


_FIELDS = {f.name: f for f in fields(Config) if f.name not in _TABLES}


def _coerce(key: str, value: object, source: str) -> object:
    kind = _FIELDS[key].type
    if key in _LIST_KEYS:
        entries = value.split(",") if isinstance(value, str) else value
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ConfigError(f"{source}: {key} = {value!r} is not valid; expected a list of networks "
                              f"such as [\"127.0.0.1\", \"10.0.0.0/24\"]")
        return parse_networks([e for e in entries if e.strip()], f"{source}: {key}")
    if key == "retention":
        return _retention_ms(value, source)
    if key == "currency":
        return _currency(value, source)
    try:
        if key in _DURATION_KEYS:
            if isinstance(value, int) and not isinstance(value, bool):
                return value * 1000
            return parse_duration_ms(str(value), what=key)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError
        return str(value)
    except (ValueError, UserError):
        expected = "a duration such as 30s" if key in _DURATION_KEYS else ("a whole number" if kind == "int" else "a string")
        shown = "***" if key in SECRET_KEYS else repr(value)
        raise ConfigError(f"{source}: {key} = {shown} is not valid; expected {expected}") from None


def _currency(value: object, source: str) -> str:
    from autocall.engine.spoken import is_currency

    if isinstance(value, str) and is_currency(value.strip().upper()):
        return value.strip().upper()
    raise ConfigError(f"{source}: currency = {value!r} is not a currency; write an ISO 4217 code such as \"EUR\"")


def _retention_ms(value: object, source: str) -> int:
    """``retention = "365d"`` in milliseconds; ``""`` or ``"0"`` keeps everything."""
    from autocall.ages import parse_age_s

    text = str(value).strip() if isinstance(value, str) else None
    if text is None or text in ("", "0"):
        if text is None:
            raise ConfigError(f"{source}: retention = {value!r} is not valid; write an age such as \"365d\"")
        return 0
    try:
        age_ms = int(parse_age_s(text, "retention") * 1000)
    except UserError:
        raise ConfigError(f"{source}: retention = {value!r} is not valid; write an age such as \"365d\"") from None
    if age_ms < 86_400_000:
        raise ConfigError(f"{source}: retention = {value!r} is less than a day; write at least \"1d\"")
    return age_ms


def _check_key(key: str, source: str) -> None:
    if key in _TABLES and source.startswith(ENV_PREFIX):
        raise ConfigError(f"{source}: [{key}] is set in the configuration file only (secrets in it read the "
                          f"environment with env:NAME)")
    if key not in _FIELDS:
        hint = suggest(key, _FIELDS) or f"; known keys: {', '.join(sorted(_FIELDS))}"
        raise ConfigError(f"{source}: unknown setting '{key}'{hint}")


def load_config(path: str | None = None, environ: dict[str, str] | None = None,
                cwd: str | None = None) -> Config:
    """Read the file (``path``, else ``autocall.toml`` if present), then the environment.

    Relative paths in the file are relative to the file; from the environment
    or the defaults, to the working directory.
    """
    environ = os.environ if environ is None else environ
    base = Path(cwd or os.getcwd())
    values: dict[str, object] = {}
    file_dir = base
    chosen = path or environ.get(ENV_PREFIX + "CONFIG")
    if chosen is None and (base / DEFAULT_FILE).is_file():
        chosen = str(base / DEFAULT_FILE)
    if chosen is not None:
        config_path = (base / chosen) if not os.path.isabs(chosen) else Path(chosen)
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{chosen}: configuration file not found; create it or drop --config") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{chosen}: cannot read the configuration file ({exc.__class__.__name__})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{chosen}: not valid TOML ({exc}); fix the file") from None
        file_dir = config_path.parent
        services = parse_services(data.pop("services", {}), str(chosen), environ)
        values["services"] = services
        if "events" in data:
            values["events"] = parse_events(data.pop("events"), str(chosen), services)
        for key, value in _flatten(data):
            _check_key(key, str(chosen))
            values[key] = _coerce(key, value, str(chosen))
    from_file = set(values) - _TABLES
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX):].lower()
        _check_key(key, name)
        values[key] = _coerce(key, raw, name)
        from_file.discard(key)
    config = replace(Config(), **values)
    resolved = {}
    for key in _PATH_KEYS:
        value = getattr(config, key)
        if key == "database" and is_database_url(value):
            continue
        if value and not os.path.isabs(value):
            resolved[key] = str(((file_dir if key in from_file else base) / value).resolve())
    return replace(config, **resolved)


def is_database_url(value: str) -> bool:
    """``postgresql://...`` (or ``postgres://``): a PostgreSQL database rather than an SQLite file."""
    return value.lower().startswith(("postgresql://", "postgres://"))


def with_database(config: Config, database: str | None, cwd: str | None = None) -> Config:
    """``config`` with ``--database`` applied (a relative file is relative to the working directory)."""
    if not database:
        return config
    if not is_database_url(database) and database != ":memory:" and not os.path.isabs(database):
        database = str((Path(cwd or os.getcwd()) / database).resolve())
    return replace(config, database=database)


def _flatten(data: dict, prefix: str = ""):
    """Tables are allowed for grouping (``[server] port = 4573`` is ``port``); keys stay flat."""
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, prefix)
        else:
            yield prefix + key, value
