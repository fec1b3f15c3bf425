"""The record of one call: what the caller heard and pressed, where the dialogue went, how it ended."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from operator import itemgetter

from autocall.engine.values import SECRET_MASK  # noqa: F401  (the mask, shown by the record's readers)

ENDED_HANGUP = "hangup"
ENDED_CALLER = "caller_hangup"
ENDED_ERROR = "error"
EXIT_HANGUP, EXIT_ERROR, EXIT_END = "(hangup)", "(error)", "(end)"
_KEYS = itemgetter("keys")


@dataclass
class CallRecord:
    call_id: str
    script: str
    started_at: float
    caller: str = ""
    called: str = ""
    path: list[str] = field(default_factory=list)
    prompts: list[dict] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)
    transfers: list[dict] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)
    result: str | None = None
    ended_by: str | None = None
    error: str | None = None
    variables: dict = field(default_factory=dict)
    optout: bool = False
    ended_at: float | None = None
    statements: int = 0
    # What reports need beyond the lists above (which keep the ``simulate --json`` shape), parallel to them:
    # per input, the gather's variable and secrecy or whether a menu gave up there (its ``failure``);
    # per transfer, the state it ran in.
    input_notes: list[dict] = field(default_factory=list)
    transfer_states: list[str] = field(default_factory=list)
    # fetch/send requests (service, method, path, query, body, status, ok, error, ms; secret values ***) and
    # notify notices (service, path, body). Stored with the call through its log (method, service, path,
    # status, time), never their query or body.
    requests: list[dict] = field(default_factory=list)
    notifications: list[dict] = field(default_factory=list)

    @property
    def keys(self) -> str:
        """Every key the caller pressed, in order (secret gathers masked)."""
        return "".join(map(_KEYS, self.inputs))

    @property
    def duration(self) -> float:
        return max((self.ended_at or self.started_at) - self.started_at, 0.0)

    def exits(self) -> list[str]:
        """Where each visit of ``path`` went: the next state, or for the last one how the call ended there
        (``(hangup)`` the caller hung up, ``(error)``, ``(end)`` the dialogue ended the call)."""
        last = {ENDED_CALLER: EXIT_HANGUP, ENDED_ERROR: EXIT_ERROR}.get(self.ended_by, EXIT_END)
        return self.path[1:] + [last] if self.path else []

    def simulate_json(self) -> dict:
        """The ``simulate --json`` object, exactly the keys operations.md lists."""
        return {
            "script": self.script,
            "path": list(self.path),
            "prompts": list(self.prompts),
            "inputs": list(self.inputs),
            "transfers": list(self.transfers),
            "result": self.result,
            "ended_by": self.ended_by,
            "variables": dict(self.variables),
            "error": self.error,
            "requests": list(self.requests),
            "notifications": list(self.notifications),
        }

    def to_dict(self) -> dict:
        data = asdict(self)
        data["keys"] = self.keys
        data["duration"] = round(self.duration, 3)
        return data
