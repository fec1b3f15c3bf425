"""Outbound calls over AMI, pure: the request built from a channel template, the outcome read from ``OriginateResponse``.

How Asterisk reports an async ``Originate`` (as captured from Asterisk 22.10.1,
``tests/ami/transcripts/ami-*.log``): first ``Response: Success`` /
``Message: Originate successfully queued`` with our ActionID, later an
``Event: OriginateResponse`` with the same ActionID, ``Response:
Success|Failure``, ``Reason``, ``Uniqueid`` and ``Channel``. The Reason is the
last control frame seen on the dialled channel (``AST_CONTROL_*``):

======  ==============  ==========================================================
Reason  outcome         meaning
======  ==============  ==========================================================
4       ``answered``    the callee answered (``Response: Success``)
5       ``busy``        the callee was busy
8       ``congestion``  the network or trunk was congested
3       ``noanswer``    it rang until the Originate ``Timeout`` ran out
0       ``failed``      the call could not be placed (no such channel, bad trunk...)
1       ``failed``      hung up before answer (``detail`` says so)
other   see below       not documented by Asterisk
======  ==============  ==========================================================

An unknown or missing Reason becomes ``answered`` when the event says
``Response: Success`` (Asterisk only says Success when the channel answered)
and ``failed`` otherwise: Asterisk did finish the attempt, so it is never
``unknown``. ``unknown`` is kept for attempts whose fate we could not learn:
no ``OriginateResponse`` before the deadline, or the client stopped first
(see ``autocall.ami.client``). A scheduler must not redial an ``unknown``
attempt blindly: the call may have been placed.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Mapping

from autocall.ami.protocol import Action, Event, Fields, Response, originate
from autocall.errors import UserError

__all__ = [
    "ChannelTemplate", "ChannelTemplateError", "OriginateOutcome", "OriginateRequest", "OriginateResult",
    "REASON_OUTCOMES", "build_originate_request", "outcome_for",
]


class OriginateOutcome(str, Enum):
    """How one outbound attempt ended; the values are the words stored and exported."""

    ANSWERED = "answered"
    BUSY = "busy"
    CONGESTION = "congestion"
    NOANSWER = "noanswer"
    FAILED = "failed"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


REASON_OUTCOMES: dict[int, OriginateOutcome] = {
    4: OriginateOutcome.ANSWERED,
    5: OriginateOutcome.BUSY,
    8: OriginateOutcome.CONGESTION,
    3: OriginateOutcome.NOANSWER,
    0: OriginateOutcome.FAILED,
    1: OriginateOutcome.FAILED,
}

_REASON_DETAILS = {
    4: "answered", 5: "busy", 8: "congestion", 3: "no answer before the timeout",
    0: "the call could not be placed", 1: "hung up before answer",
}
_NO_UNIQUEID = frozenset({"", "<unknown>", "<null>"})   # <null> in older Asterisk (panoramisk #37)


def _reason_number(reason: str | int | None) -> int | None:
    if isinstance(reason, int):
        return reason
    try:
        return int(str(reason).strip())
    except (TypeError, ValueError):
        return None


def outcome_for(response: str | None, reason: str | int | None) -> OriginateOutcome:
    """The outcome of an ``OriginateResponse``; see the table in the module docstring."""
    number = _reason_number(reason)
    if number in REASON_OUTCOMES:
        return REASON_OUTCOMES[number]
    if (response or "").lower() == "success":
        return OriginateOutcome.ANSWERED
    return OriginateOutcome.FAILED


@dataclass(frozen=True)
class OriginateResult:
    """The fate of one Originate, correlated by its ActionID.

    ``reason``/``response``/``uniqueid``/``channel`` come from the
    ``OriginateResponse`` event (None when it never came); ``uniqueid`` is None
    when Asterisk said ``<unknown>``. ``queued`` tells whether Asterisk
    acknowledged the action ("Originate successfully queued"); ``detail`` is a
    short human sentence for logs and exports.
    """

    action_id: str
    outcome: OriginateOutcome
    detail: str
    queued: bool
    reason: int | None = None
    response: str | None = None
    uniqueid: str | None = None
    channel: str | None = None
    event: Event | None = None

    not_placed: bool = False     # Asterisk refused the action itself: nothing was dialled

    @property
    def answered(self) -> bool:
        return self.outcome is OriginateOutcome.ANSWERED

    @classmethod
    def from_event(cls, event: Event, queued: bool) -> OriginateResult:
        """Read an ``OriginateResponse`` event."""
        fields = event.fields
        raw_reason = fields.get("Reason")
        reason = _reason_number(raw_reason)
        response = fields.get("Response")
        outcome = outcome_for(response, reason)
        detail = _REASON_DETAILS.get(reason)
        if detail is None:
            detail = f"Reason {raw_reason!s} is not documented; Response: {response}"
        uniqueid = fields.get("Uniqueid")
        return cls(action_id=event.action_id or "", outcome=outcome, detail=detail, queued=queued,
                   reason=reason, response=response,
                   uniqueid=None if uniqueid is None or uniqueid.strip() in _NO_UNIQUEID else uniqueid,
                   channel=fields.get("Channel"), event=event)

    @classmethod
    def refused(cls, response: Response) -> OriginateResult:
        """Asterisk answered the Originate itself with an error: nothing was dialled."""
        return cls(action_id=response.action_id or "", outcome=OriginateOutcome.FAILED,
                   detail=f"Asterisk refused the Originate: {response.message or response.status}", queued=False,
                   not_placed=True)

    @classmethod
    def unknown(cls, action_id: str, detail: str, queued: bool) -> OriginateResult:
        """We could not learn what happened; the call may or may not have been placed."""
        return cls(action_id=action_id, outcome=OriginateOutcome.UNKNOWN, detail=detail, queued=queued)


class ChannelTemplateError(UserError):
    """A ``--channel`` / ``channel_template`` that cannot make a dial string."""


# What a number may hold once in a dial string: digits, a leading +, DTMF symbols and letters
# (SIP users). "/", "@", "&", ",", spaces and line breaks would change what is dialled.
_NUMBER = re.compile(r"^\+?[0-9A-Za-z*#._-]+$")


@dataclass(frozen=True)
class ChannelTemplate:
    """A dial string with one ``{number}`` placeholder, e.g. ``PJSIP/{number}@trunk``."""

    template: str

    def __post_init__(self) -> None:
        names = []
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(self.template) if name is not None]
        except ValueError as exc:
            raise ChannelTemplateError(f"channel template {self.template!r}: {exc}; "
                                       f"write it like PJSIP/{{number}}@trunk") from None
        if names != ["number"]:
            raise ChannelTemplateError(f"channel template {self.template!r} must contain {{number}} exactly once "
                                       f"and no other placeholder, e.g. PJSIP/{{number}}@trunk")
        if "/" not in self.template or any(c in self.template for c in "\r\n,"):
            raise ChannelTemplateError(f"channel template {self.template!r} is not a dial string "
                                       f"TECH/resource, e.g. PJSIP/{{number}}@trunk")

    def expand(self, number: str) -> str:
        """The dial string for ``number``; refuses a number that would change the dial string's shape."""
        if not _NUMBER.match(number):
            raise ValueError(f"{number!r} cannot be dialled: use digits, +, * and # only")
        return self.template.format(number=number)


@dataclass(frozen=True)
class OriginateRequest:
    """Everything one ``Originate`` needs except its ActionID, which the client assigns.

    Either ``context``/``exten``/``priority`` (where the answered call goes in
    the dialplan) or ``application``/``data`` (e.g. ``AGI``,
    ``agi://127.0.0.1:4573/reminder``). ``timeout_ms`` is how long it may ring.
    """

    channel: str
    context: str | None = None
    exten: str | None = None
    priority: int = 1
    application: str | None = None
    data: str | None = None
    timeout_ms: int = 30_000
    caller_id: str | None = None
    variables: tuple[tuple[str, str], ...] = ()
    account: str | None = None
    channel_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "variables", tuple((str(k), str(v)) for k, v in self.variables))
        self.to_action("check")   # refuse a request AMI cannot carry now, not when it is dialled

    def to_action(self, action_id: str) -> Action:
        return originate(self.channel, action_id=action_id, context=self.context, exten=self.exten,
                         priority=self.priority if self.context is not None else None,
                         application=self.application, data=self.data, timeout_ms=self.timeout_ms,
                         caller_id=self.caller_id, variables=self.variables, account=self.account,
                         channel_id=self.channel_id)

    def variable(self, name: str) -> str | None:
        return Fields(self.variables).get(name)


def build_originate_request(template: ChannelTemplate | str, number: str, *, attempt_id: str | int, script: str,
                            context: str | None = None, exten: str = "s", priority: int = 1,
                            application: str | None = None, data: str | None = None,
                            timeout_ms: int = 30_000, caller_id: str | None = None,
                            variables: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> OriginateRequest:
    """The request for one attempt: the number put in the template, the attempt tagged on the channel.

    ``attempt_id`` is the attempt's token (``store.campaigns.begin_attempts``).
    ``AUTOCALL_ATTEMPT`` / ``AUTOCALL_SCRIPT`` / ``AUTOCALL_NUMBER`` ride on the
    channel as variables, so the FastAGI side (which sees the channel's
    variables) can tie the answered call back to its attempt even when the
    AMI link was down at the time. ``variables`` are added after them.
    """
    if not isinstance(template, ChannelTemplate):
        template = ChannelTemplate(template)
    tags = [("AUTOCALL_ATTEMPT", str(attempt_id)), ("AUTOCALL_SCRIPT", script), ("AUTOCALL_NUMBER", number)]
    extra = list(variables.items() if isinstance(variables, Mapping) else variables)
    return OriginateRequest(channel=template.expand(number),
                            context=context if application is None else None,
                            exten=exten if application is None else None, priority=priority,
                            application=application, data=data, timeout_ms=timeout_ms, caller_id=caller_id,
                            variables=tuple(tags + [(str(k), str(v)) for k, v in extra]))
