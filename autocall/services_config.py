"""The ``[services.NAME]`` and ``[events]`` tables of the configuration: what scripts and events talk to.

Secrets (header values, signing secrets) are held as ``SecretSetting``:
its ``repr``/``str`` is ``***``, so a stray format or log call never shows
one. ``env:NAME`` values are read from the environment when the
configuration is loaded; a variable that is not set is only an error for
the commands that talk to services (``check_services``), so ``autocall
calls`` still works on a machine without the tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping
from urllib.parse import urlsplit

from autocall.errors import ConfigError
from autocall.suggest import suggest

EVENT_NAMES = ("call_ended", "attempt_ended", "campaign_finished")
DEFAULT_MAX_CONCURRENT = 50
SERVICE_KEYS = ("url", "headers", "signing_secret", "max_concurrent")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_ENV = "env:"
# Headers AutoCall sets itself on every request: configuration cannot replace them.
RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection",
                              "idempotency-key", "x-autocall-timestamp", "x-autocall-signature", "x-autocall-event"})


class SecretSetting:
    """A secret from the configuration: ``.value`` is the text, every other view of it is ``***``.

    ``missing`` names the environment variable an ``env:NAME`` value asked for when it was not set.
    """

    __slots__ = ("value", "missing", "source")

    def __init__(self, value: str, missing: str = "", source: str = "") -> None:
        self.value = value
        self.missing = missing
        self.source = source            # where it is set, for messages: "[services.crm] signing_secret"

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value) or bool(self.missing)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretSetting) and (self.value, self.missing) == (other.value, other.missing)

    def __hash__(self) -> int:
        return hash((self.value, self.missing))


@dataclass(frozen=True)
class ServiceConfig:
    """One ``[services.NAME]`` table. ``url`` is ``""`` when the script's own URL is used."""

    name: str
    url: str = ""
    headers: Mapping[str, SecretSetting] = field(default_factory=dict, repr=False)
    signing_secret: SecretSetting | None = field(default=None, repr=False)
    max_concurrent: int = DEFAULT_MAX_CONCURRENT

    def problems(self) -> list[str]:
        """Why this service cannot be used now (an ``env:`` variable not set), one line each."""
        found = []
        for setting in [*self.headers.values(), self.signing_secret]:
            if setting is not None and setting.missing:
                found.append(f"{setting.source} = env:{setting.missing}, but {setting.missing} is not set; "
                             f"export it before starting AutoCall")
        return found

    def header_values(self) -> dict[str, str]:
        """The headers to send (secret values in the clear: for the wire only)."""
        return {name: setting.value for name, setting in self.headers.items()}

    def describe(self) -> dict[str, object]:
        return {"url": self.url, "headers": {name: "***" for name in self.headers},
                "signing_secret": "***" if self.signing_secret else "", "max_concurrent": self.max_concurrent}


@dataclass(frozen=True)
class EventRoute:
    """Where one product event is posted: ``[events] NAME = { service = "crm", path = "/..." }``."""

    event: str
    service: str
    path: str


def check_url(url: str, where: str) -> str:
    """``url`` if it is an absolute ``http``/``https`` URL with a host, else a ``ConfigError``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{where}: url = {url!r} is not an http:// or https:// URL with a host; "
                          f"write e.g. \"https://crm.example.com/api\"")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{where}: the url may not carry a query, a fragment or a user name and password; "
                          "put credentials in headers with env:NAME")
    return url.rstrip("/")


def _secret(value: object, where: str, environ: Mapping[str, str], source: str) -> SecretSetting:
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {where} is not valid; expected a string (a value, or env:NAME to read "
                          "the environment)")
    if value.startswith(_ENV):
        name = value[len(_ENV):]
        if not name:
            raise ConfigError(f"{source}: {where} = \"env:\" names no variable; write env:NAME")
        if name not in environ:
            return SecretSetting("", missing=name, source=where)
        value = environ[name]
    if "\r" in value or "\n" in value:
        raise ConfigError(f"{source}: {where} holds a line break, which a header cannot carry; fix the value")
    return SecretSetting(value, source=where)


def parse_services(table: object, source: str, environ: Mapping[str, str]) -> Mapping[str, ServiceConfig]:
    """The ``[services]`` table of the file named ``source``."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: services must be a table of [services.NAME] tables")
    services = {}
    for name, spec in table.items():
        where = f"{source}: [services.{name}]"
        if not _NAME.match(name):
            raise ConfigError(f"{where}: a service name is letters, digits and _ (as in the script)")
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a table (url, headers, signing_secret, max_concurrent)")
        for key in spec:
            if key not in SERVICE_KEYS:
                hint = suggest(key, SERVICE_KEYS) or f"; known keys: {', '.join(SERVICE_KEYS)}"
                raise ConfigError(f"{where}: unknown key '{key}'{hint}")
        url = spec.get("url", "")
        if not isinstance(url, str):
            raise ConfigError(f"{where}: url is not valid; expected a string such as \"https://crm.example.com/api\"")
        if url:
            url = check_url(url, where)
        headers_spec = spec.get("headers", {})
        if not isinstance(headers_spec, dict):
            raise ConfigError(f"{where}: headers must be a table, e.g. headers = {{ Authorization = \"env:TOKEN\" }}")
        headers = {}
        for header, value in headers_spec.items():
            if not _HEADER_NAME.match(header):
                raise ConfigError(f"{where}: '{header}' is not a valid header name")
            if header.lower() in RESERVED_HEADERS:
                raise ConfigError(f"{where}: the header '{header}' is set by AutoCall itself; remove it")
            headers[header] = _secret(value, f"[services.{name}] headers.{header}", environ, source)
        signing = spec.get("signing_secret")
        signing_secret = (_secret(signing, f"[services.{name}] signing_secret", environ, source)
                          if signing is not None else None)
        if signing_secret is not None and not signing_secret.value and not signing_secret.missing:
            raise ConfigError(f"{where}: signing_secret is empty; remove it or give a secret")
        limit = spec.get("max_concurrent", DEFAULT_MAX_CONCURRENT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ConfigError(f"{where}: max_concurrent = {limit!r} is not valid; expected a whole number "
                              "from 1 to 10000")
        services[name] = ServiceConfig(name, url, MappingProxyType(headers), signing_secret, limit)
    return MappingProxyType(services)


def parse_events(table: object, source: str, services: Mapping[str, ServiceConfig]) -> Mapping[str, EventRoute]:
    """The ``[events]`` table: each event names a configured service and a path."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: events must be a table, e.g. [events] call_ended = "
                          "{ service = \"crm\", path = \"/autocall/calls\" }")
    routes = {}
    for event, spec in table.items():
        where = f"{source}: [events] {event}"
        if event not in EVENT_NAMES:
            hint = suggest(event, EVENT_NAMES) or f"; the events are {', '.join(EVENT_NAMES)}"
            raise ConfigError(f"{where}: unknown event '{event}'{hint}")
        if not isinstance(spec, dict) or set(spec) - {"service", "path"} or not {"service", "path"} <= set(spec):
            raise ConfigError(f"{where} must be {{ service = \"NAME\", path = \"/PATH\" }}")
        service, path = spec["service"], spec["path"]
        if not isinstance(service, str) or service not in services:
            hint = suggest(str(service), services) if services else ""
            raise ConfigError(f"{where}: service '{service}' is not configured{hint or ''}; add a "
                              f"[services.{service}] table with its url")
        if not services[service].url:
            raise ConfigError(f"{where}: [services.{service}] has no url; events need one in the configuration")
        if not isinstance(path, str) or not path.startswith("/") or "://" in path or "?" in path or "#" in path:
            raise ConfigError(f"{where}: path = {path!r} must start with / (no scheme, host or query)")
        routes[event] = EventRoute(event, service, path)
    return MappingProxyType(routes)


def check_services(services: Mapping[str, ServiceConfig]) -> None:
    """Raise a ``ConfigError`` naming the first service that cannot be used (an ``env:`` variable not set)."""
    for service in services.values():
        problems = service.problems()
        if problems:
            raise ConfigError(problems[0])
