"""What every PBX backend of the scheduler is given: the campaign's call settings, the same for each backend.

``SimPbx(conn, clock, calls, line)`` and ``AmiPbx(conn, clock, calls, line)``
take the same arguments in the same order: the database, the clock (an
``IReactorTime``), these ``CallSettings`` and the backend's own line
settings (``SimLine``, ``AmiLine``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallSettings:
    """How each call of the campaign is placed, whatever the PBX."""

    campaign: str = "campaign"             # the campaign's name (call ids, the do-not-call list's source)
    script: str = ""                       # the script's file stem: AGI runs it on Asterisk
    caller_id: str = ""                    # "Acme <5551234>": sent with the call; `called` is its number
    amd: bool = False                      # answering-machine detection before the script
    ring_timeout_ms: int = 30_000
    max_call_duration_ms: int = 3_600_000

    @classmethod
    def from_options(cls, name: str, script: str, options: dict, max_call_duration_ms: int) -> "CallSettings":
        """From ``campaign run``'s stored options."""
        return cls(campaign=name, script=script, caller_id=options.get("caller_id") or "",
                   amd=bool(options.get("amd")), max_call_duration_ms=max_call_duration_ms)
