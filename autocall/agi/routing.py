"""Which script a FastAGI request runs: ``agi://host/NAME?query`` -> ``<scripts_dir>/NAME.dlg``.

``NAME`` may name a subfolder (``sales/reminder``) but never leave the
scripts folder: ``..``, ``.``, empty segments, absolute paths, backslashes
and NUL are refused by ``Environment.safe_script``, and the path must still
be inside the folder after symbolic links are resolved (``realpath``), so a
link pointing out of it is refused too. A trailing ``.dlg`` in the request
is accepted (``agi://host/support.dlg`` is ``support``).

Resolving a name costs a ``realpath`` (an ``lstat`` per path component), so
each resolution is remembered for ``ttl`` seconds (1 s): a link changed to
point elsewhere is followed again within a second.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from autocall.agi.protocol import Environment

SCRIPT_SUFFIX = ".dlg"
DEFAULT_TTL_S = 1.0
MAX_REMEMBERED = 1024


class RouteRefused(Exception):
    """The requested name is not a script inside the scripts folder; the message says why."""

    def __init__(self, requested: str, reason: str) -> None:
        requested = requested if len(requested) <= 200 else requested[:200] + "..."
        super().__init__(f"script {requested!r} refused: {reason}")
        self.requested = requested
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Route:
    """A request resolved: ``name`` as the call record shows it, ``path`` the real path of the ``.dlg``."""

    name: str
    path: str


class ScriptRouter:
    """Resolves request names against one scripts folder (its real path is taken once)."""

    __slots__ = ("root", "_prefix", "_ttl", "_known")

    def __init__(self, scripts_dir: str, ttl: float = DEFAULT_TTL_S) -> None:
        self.root = os.path.realpath(scripts_dir)
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self._ttl = ttl
        self._known: dict[str, tuple[float, Route]] = {}

    def resolve(self, environment: Environment) -> Route:
        """The route of a request, or ``RouteRefused``. Whether the file exists is the registry's question."""
        requested = environment.network_script
        known = self._known.get(requested)
        now = time.monotonic()
        if known is not None and known[0] > now:
            return known[1]
        route = self._resolve(environment)
        if len(self._known) >= MAX_REMEMBERED:
            self._known.clear()
        self._known[requested] = (now + self._ttl, route)
        return route

    def _resolve(self, environment: Environment) -> Route:
        name = environment.safe_script
        if name is None:
            requested = environment.script
            if not requested:
                raise RouteRefused(requested, "the AGI URL names no script (agi://host/NAME)")
            raise RouteRefused(requested, "only names inside the scripts folder are allowed "
                                          "(no '..', '.', empty parts, absolute paths or backslashes)")
        if name.endswith(SCRIPT_SUFFIX):
            name = name[:-len(SCRIPT_SUFFIX)]
            if not name or name.endswith("/"):
                raise RouteRefused(environment.script, "the AGI URL names no script (agi://host/NAME)")
        path = os.path.realpath(os.path.join(self.root, name + SCRIPT_SUFFIX))
        if not path.startswith(self._prefix):
            raise RouteRefused(name, "it leads out of the scripts folder through a symbolic link")
        return Route(name, path)
