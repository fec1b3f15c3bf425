"""A fake Asterisk Manager Interface on 127.0.0.1, written from the captured transcripts.

What it says, and when, follows the traffic captured from Asterisk 22.10.1 in
``tests/ami/transcripts/ami-*.log``: the banner
``Asterisk Call Manager/11.0.0``, CRLF lines, a blank line after each
message; ``Authentication accepted``/``Authentication failed``; an async
Originate answered ``Originate successfully queued`` with the ActionID, then
call events (``Newchannel``, ``VarSet``, ``Newstate``, ``Hangup``...) around an
``OriginateResponse`` carrying the same ActionID, ``Response: Success`` and
``Reason: 4`` when answered, ``Response: Failure`` with ``Uniqueid:
<unknown>`` and the ``Channel`` as sent otherwise; ``Response: Goodbye`` /
``Thanks for all the fish.`` on Logoff.

What the transcripts do not show is taken from Asterisk's ``main/manager.c``
and marked so: the Ping reply (``Ping: Pong``, ``Timestamp``), closing the
connection after a refused login, ``Permission denied`` before login,
``Invalid/unknown command``, the ``Status`` event list, the per-session event
filter of ``Events:`` and the broadcast of call events (``OriginateResponse``
included) to every logged-in session.

It parses actions with its own few lines, not with ``autocall.ami.protocol``,
so a bug in the client's parser cannot hide behind the same bug here.
"""

from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

REASONS = {"answered": 4, "busy": 5, "congestion": 8, "noanswer": 3, "failed": 0, "hangup": 1}
# Hangup causes Asterisk gives for each Reason (Q.850): normal clearing, busy, congestion, no answer.
_HANGUP_CAUSES = {4: ("16", "Normal Clearing"), 5: ("17", "User busy"), 8: ("34", "Circuit/channel congestion"),
                  3: ("19", "No answer"), 0: ("0", "Unknown"), 1: ("16", "Normal Clearing")}
SILENT = "silent"   # an outcome with no OriginateResponse at all (to test the client's deadline)


def asterisk_split_args(value: str) -> list[str]:
    """Split a ``Variable:`` value the way Asterisk does (``__ast_app_separate_args`` with remove_chars).

    Commas separate items unless inside parentheses, brackets or double quotes;
    quotes are removed; a backslash is removed and keeps the next character.
    """
    items: list[str] = []
    current: list[str] = []
    paren = bracket = 0
    quote = False
    chars = iter(value.lstrip(" \t"))
    for char in chars:
        if char == "(":
            paren += 1
        elif char == ")" and paren:
            paren -= 1
        elif char == "[":
            bracket += 1
        elif char == "]" and bracket:
            bracket -= 1
        elif char == '"':
            quote = not quote
            continue
        elif char == "\\":
            current.append(next(chars, ""))
            continue
        elif char == "," and not (paren or quote or bracket):
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return items


@dataclass
class ReceivedAction:
    """One action as the fake received it: every line in order, duplicates kept."""

    session: int
    fields: list[tuple[str, str]]

    def get(self, key: str, default: str | None = None) -> str | None:
        for name, value in self.fields:
            if name.lower() == key.lower():
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        return [value for name, value in self.fields if name.lower() == key.lower()]

    @property
    def name(self) -> str:
        return self.get("Action", "") or ""

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def variables(self) -> dict[str, str]:
        """The channel variables as Asterisk would set them (``man_do_variable_value``)."""
        result: dict[str, str] = {}
        for header in self.get_all("Variable"):
            for item in asterisk_split_args(header):
                name, equals, value = item.partition("=")
                if equals and name:
                    result[name] = value
        return result

    @property
    def number(self) -> str:
        """The dialled resource of ``TECH/number@trunk`` (``number``)."""
        resource = (self.get("Channel") or "").partition("/")[2]
        return resource.partition("@")[0]


def _message(*pairs: tuple[str, str]) -> bytes:
    return ("".join(f"{key}: {value}\r\n" for key, value in pairs) + "\r\n").encode()


def _response(action: ReceivedAction, status: str, *pairs: tuple[str, str]) -> bytes:
    head = [("Response", status)]
    if action.action_id is not None:      # Asterisk echoes the ActionID only when there was one
        head.append(("ActionID", action.action_id))
    return _message(*head, *pairs)


def _event_class(data: bytes) -> str:
    for line in data.split(b"\r\n"):
        if line.startswith(b"Privilege: "):
            return line[len(b"Privilege: "):].split(b",")[0].decode().lower()
    return "system"


@dataclass
class _Call:
    action: ReceivedAction
    reason: int | str
    uniqueid: str
    name: str
    started: bool = False
    delayed: Any = field(default=None, repr=False)


class _Session(Protocol):
    """One manager connection, as ``manager.c``'s session thread handles it."""

    def __init__(self, server: FakeAmiServer, number: int) -> None:
        self.server = server
        self.number = number
        self.buffer = b""
        self.logged_in = False
        self.event_mask: set[str] | None = None     # None: every class ("on")
        self.dropped = False

    def connectionMade(self) -> None:
        self.server.sessions.append(self)
        self.transport.write(BANNER)

    def connectionLost(self, reason: Any = None) -> None:
        self.dropped = True
        if self in self.server.sessions:
            self.server.sessions.remove(self)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer and not self.dropped:
            block, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            pairs = []
            for line in block.decode("utf-8", "surrogateescape").split("\r\n"):
                key, _, value = line.partition(":")
                pairs.append((key.strip(), value.lstrip(" ")))
            if pairs:
                self.server._action(self, ReceivedAction(self.number, pairs))

    def accepts(self, data: bytes) -> bool:
        if not self.logged_in or self.dropped:
            return False
        return self.event_mask is None or bool(self.event_mask & {_event_class(data), "all"})

    def send(self, data: bytes) -> None:
        if not self.dropped:
            self.transport.write(data)

    def drop(self, abort: bool = False) -> None:
        """Close like a broken link: nothing more is read or written (``abort`` also discards unsent bytes)."""
        self.dropped = True
        if abort:
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()


class FakeAmiServer:
    """A manager on ``127.0.0.1:<port>`` that places fake calls with scripted outcomes.

    ``outcomes`` maps a dialled number (``PJSIP/<number>@trunk``) or a whole
    channel to a Reason (4, 5, 8, 3, 0, 1), an outcome word (``answered``,
    ``busy``, ``congestion``, ``noanswer``, ``failed``, ``hangup``) or
    ``SILENT``; it may also be a function of the ``ReceivedAction``. Unlisted
    numbers are answered.
    """

    def __init__(self, reactor: Any, *, username: str = "autocall", secret: str = "autocall",
                 outcomes: Mapping[str, int | str] | Callable[[ReceivedAction], int | str] | None = None,
                 call_delay: float = 0.0, flood: int = 0, event_before_response: bool = False,
                 on_answer: Callable[[ReceivedAction], Any] | None = None,
                 drop_after_originates: int | None = None, answer_pings: bool = True,
                 refuse_originates: int = 0) -> None:
        self.reactor = reactor
        self.username = username
        self.secret = secret
        self.outcomes = outcomes or {}
        self.call_delay = call_delay
        self.flood = flood
        self.event_before_response = event_before_response
        self.on_answer = on_answer
        self.drop_after_originates = drop_after_originates
        self.answer_pings = answer_pings
        self.refuse_originates = refuse_originates   # the next N Originates are refused (shutting down, booting)
        self.refuse_logins = False
        self.hold = False                      # True: calls wait for release_calls()
        self.actions: list[ReceivedAction] = []
        self.sessions: list[_Session] = []
        self.logins = 0
        self.failed_logins = 0
        self.calls: list[_Call] = []           # placed and not finished
        self._port: Any = None
        self._session_numbers = itertools.count(1)
        self._uniqueids = itertools.count(1)
        self._waiters: list[tuple[Callable[[], bool], defer.Deferred]] = []

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> int:
        factory = Factory()
        factory.noisy = False
        factory.buildProtocol = lambda addr: _Session(self, next(self._session_numbers))
        self._port = self.reactor.listenTCP(0, factory, interface="127.0.0.1")
        return self.port

    @property
    def port(self) -> int:
        return self._port.getHost().port

    @property
    def endpoint(self) -> str:
        return f"tcp:host=127.0.0.1:port={self.port}"

    def stop(self) -> defer.Deferred:
        for call in self.calls:
            if call.delayed is not None and call.delayed.active():
                call.delayed.cancel()
        for session in list(self.sessions):
            session.drop(abort=True)
        return defer.maybeDeferred(self._port.stopListening)

    # -- control from a test --------------------------------------------------------------------
    @property
    def originates(self) -> list[ReceivedAction]:
        return [action for action in self.actions if action.name.lower() == "originate"]

    def drop_connections(self, abort: bool = False) -> None:
        for session in list(self.sessions):
            session.drop(abort)

    def hold_calls(self) -> None:
        self.hold = True

    def release_calls(self, count: int | None = None) -> None:
        """Let held calls (the oldest ``count``, default all) reach their outcome now."""
        self.hold = False
        for call in [call for call in self.calls if call.delayed is None and not call.started][:count]:
            self._finish(call)

    def when(self, condition: Callable[[], bool]) -> defer.Deferred:
        """A Deferred fired once ``condition()`` is true (checked after every action and call)."""
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append((condition, waiter))
        self._check_waiters()
        return waiter

    def _check_waiters(self) -> None:
        for item in list(self._waiters):
            condition, waiter = item
            if condition():
                self._waiters.remove(item)
                waiter.callback(None)

    # -- actions ---------------------------------------------------------------------------------
    def _action(self, session: _Session, action: ReceivedAction) -> None:
        self.actions.append(action)
        name = action.name.lower()
        if name == "login":
            self._login(session, action)
        elif not session.logged_in:
            session.send(_response(action, "Error", ("Message", "Permission denied")))  # manager.c
        elif name == "ping":
            if self.answer_pings:   # manager.c action_ping
                session.send(_response(action, "Success", ("Ping", "Pong"), ("Timestamp", "1795685579.123456")))
        elif name == "logoff":
            session.send(_response(action, "Goodbye", ("Message", "Thanks for all the fish.")))
            session.drop()
        elif name == "originate":
            self._originate(session, action)
        elif name == "status":
            self._status(session, action)
        elif name == "events":
            session.event_mask = self._mask(action.get("EventMask"))
            session.send(_response(action, "Success", ("Events", action.get("EventMask") or "")))
        else:
            session.send(_response(action, "Error", ("Message", "Invalid/unknown command")))
        self._check_waiters()

    @staticmethod
    def _mask(value: str | None) -> set[str] | None:
        if value is None or value.strip().lower() in ("on", "yes", "true", "all"):
            return None
        if value.strip().lower() in ("off", "no", "false"):
            return set()
        return {part.strip().lower() for part in value.split(",")}

    def _login(self, session: _Session, action: ReceivedAction) -> None:
        if self.refuse_logins or action.get("Username") != self.username or action.get("Secret") != self.secret:
            self.failed_logins += 1
            session.send(_response(action, "Error", ("Message", "Authentication failed")))
            session.drop()        # manager.c: action_login returns -1, the session ends
            return
        self.logins += 1
        session.logged_in = True
        session.event_mask = self._mask(action.get("Events"))
        session.send(_response(action, "Success", ("Message", "Authentication accepted")))
        booted = _message(("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", "99"),
                          ("LastReload", "99"), ("Status", "Fully Booted"))
        if session.accepts(booted):
            session.send(booted)

    def _originate(self, session: _Session, action: ReceivedAction) -> None:
        channel = action.get("Channel") or ""
        if "/" not in channel:
            session.send(_response(action, "Error", ("Message", "Invalid channel")))
            return
        if not action.get("Exten") and not action.get("Application"):
            session.send(_response(action, "Error", ("Message", "Exten not specified")))
            return
        if self.refuse_originates:
            # Not in the transcripts: manager.c answers an Originate it cannot place (Asterisk shutting down,
            # not fully booted) with Response: Error and no call at all.
            self.refuse_originates -= 1
            session.send(_response(action, "Error", ("Message", "Originate failed")))
            return
        reason = self._outcome(action)
        serial = next(self._uniqueids)
        call = _Call(action, reason, f"1795685579.{serial}", f"{channel.split('@')[0].split('/')[0]}/"
                                                             f"{action.number or 'x'}-{serial:08x}")
        self.calls.append(call)
        queued = _response(action, "Success", ("Message", "Originate successfully queued"))
        if self.event_before_response:
            self._finish(call)
            session.send(queued)
        else:
            session.send(queued)
            if not self.hold:
                self._finish_later(call, self.call_delay)
        if self.drop_after_originates is not None and len(self.originates) >= self.drop_after_originates:
            self.drop_after_originates = None
            session.drop()

    def _outcome(self, action: ReceivedAction) -> int | str:
        if callable(self.outcomes):
            outcome = self.outcomes(action)
        else:
            outcome = self.outcomes.get(action.get("Channel") or "", self.outcomes.get(action.number, 4))
        return REASONS.get(outcome, outcome) if isinstance(outcome, str) else outcome

    def _status(self, session: _Session, action: ReceivedAction) -> None:
        """``Status``: an event list (manager.c action_status), one event per call in progress."""
        session.send(_response(action, "Success", ("EventList", "start"),
                               ("Message", "Channel status will follow")))
        for call in self.calls:
            session.send(_message(("Event", "Status"), ("Privilege", "Call"), ("ActionID", action.action_id or ""),
                                  ("Channel", call.name), ("Uniqueid", call.uniqueid)))
        session.send(_message(("Event", "StatusComplete"), ("ActionID", action.action_id or ""),
                              ("EventList", "Complete"), ("ListItems", str(len(self.calls))),
                              ("Items", str(len(self.calls)))))

    # -- calls ---------------------------------------------------------------------------------------
    def _finish_later(self, call: _Call, delay: float) -> None:
        call.delayed = self.reactor.callLater(delay, self._finish, call)

    def _finish(self, call: _Call) -> None:
        """The call reaches its outcome: the events of the transcripts, broadcast like Asterisk does."""
        call.started = True
        if call.reason == SILENT:
            self._end(call)
            return
        action, reason = call.action, int(call.reason)
        self._broadcast(self._channel_event("Newchannel", call, "0", "Down"))
        for name, value in action.variables.items():
            self._broadcast(self._channel_event("VarSet", call, "0", "Down", ("Variable", name), ("Value", value)))
        target = ([("Application", action.get("Application") or ""), ("Data", action.get("Data") or "")]
                  if action.get("Application") else
                  [("Context", action.get("Context") or ""), ("Exten", action.get("Exten") or "")])
        caller_num, caller_name = self._caller_id(action)
        if reason == 4:
            self._broadcast(self._channel_event("Newstate", call, "6", "Up"))
            self._broadcast(self._originate_response(action, "Success", call.name, target, reason, call.uniqueid,
                                                     caller_num, caller_name))
            answered = self.on_answer(action) if self.on_answer else None
            if inspect.isawaitable(answered) and not isinstance(answered, defer.Deferred):
                answered = defer.ensureDeferred(answered)
            if isinstance(answered, defer.Deferred):   # the dialogue runs; hang up when it ends
                answered.addBoth(lambda _: self._hang_up(call, reason))
            else:
                self._hang_up(call, reason)
        else:
            # ami-fail-local.log: the channel appears and hangs up; the event names the channel as sent.
            self._hang_up(call, reason, state=("0", "Down"))
            self._broadcast(self._originate_response(action, "Failure", action.get("Channel") or "", target,
                                                     reason, "<unknown>", caller_num, caller_name))

    def _hang_up(self, call: _Call, reason: int, state: tuple[str, str] = ("6", "Up")) -> None:
        cause, text = _HANGUP_CAUSES.get(reason, ("0", "Unknown"))
        self._broadcast(self._channel_event("Hangup", call, *state, ("Cause", cause), ("Cause-txt", text)))
        self._end(call)

    def _end(self, call: _Call) -> None:
        if call in self.calls:
            self.calls.remove(call)
        self._check_waiters()

    @staticmethod
    def _caller_id(action: ReceivedAction) -> tuple[str, str]:
        caller_id = action.get("CallerID") or ""
        if "<" in caller_id:
            name, _, number = caller_id.partition("<")
            return number.rstrip(">").strip() or "<unknown>", name.strip().strip('"') or "<unknown>"
        return caller_id or "<unknown>", "<unknown>"

    def _channel_event(self, name: str, call: _Call, state: str, state_desc: str,
                       *extra: tuple[str, str]) -> bytes:
        privilege = "dialplan,all" if name == "VarSet" else "call,all"
        action = call.action
        return _message(("Event", name), ("Privilege", privilege), ("Channel", call.name),
                        ("ChannelState", state), ("ChannelStateDesc", state_desc),
                        ("CallerIDNum", action.number or "<unknown>"), ("CallerIDName", "<unknown>"),
                        ("ConnectedLineNum", "<unknown>"), ("ConnectedLineName", "<unknown>"),
                        ("Language", "en"), ("AccountCode", ""), ("Context", action.get("Context") or "default"),
                        ("Exten", action.get("Exten") or "s"), ("Priority", "1"), ("Uniqueid", call.uniqueid),
                        ("Linkedid", call.uniqueid), *extra)

    @staticmethod
    def _originate_response(action: ReceivedAction, response: str, channel: str, target: list[tuple[str, str]],
                            reason: int, uniqueid: str, caller_num: str, caller_name: str) -> bytes:
        head = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
        if action.action_id is not None:
            head.append(("ActionID", action.action_id))
        return _message(*head, ("Response", response), ("Channel", channel), *target, ("Reason", str(reason)),
                        ("Uniqueid", uniqueid), ("CallerIDNum", caller_num), ("CallerIDName", caller_name))

    _FLOOD = (
        _message(("Event", "Newexten"), ("Privilege", "dialplan,all"), ("Channel", "PJSIP/other-00000099"),
                 ("Context", "from-internal"), ("Exten", "200"), ("Priority", "1"), ("Uniqueid", "1795680000.99"),
                 ("Linkedid", "1795680000.99"), ("Extension", "200"), ("Application", "Dial"),
                 ("AppData", "PJSIP/200,30")),
        _message(("Event", "VarSet"), ("Privilege", "dialplan,all"), ("Channel", "PJSIP/other-00000099"),
                 ("Uniqueid", "1795680000.99"), ("Variable", "DIALSTATUS"), ("Value", "ANSWER")),
        _message(("Event", "AGIExecStart"), ("Privilege", "agi,all"), ("Channel", "PJSIP/other-00000099"),
                 ("Uniqueid", "1795680000.99"), ("CommandId", "93732781"), ("Command", "ANSWER")),
        _message(("Event", "Newstate"), ("Privilege", "call,all"), ("Channel", "PJSIP/other-00000099"),
                 ("ChannelState", "6"), ("ChannelStateDesc", "Up"), ("Uniqueid", "1795680000.99")),
        # Another dialer's call on the same Asterisk: a Response key and an ActionID that are not ours.
        _message(("Event", "OriginateResponse"), ("Privilege", "call,all"), ("ActionID", "other-dialer-1"),
                 ("Response", "Failure"), ("Channel", "PJSIP/999@trunk"), ("Context", "x"), ("Exten", "s"),
                 ("Reason", "5"), ("Uniqueid", "<unknown>"), ("CallerIDNum", "<unknown>"),
                 ("CallerIDName", "<unknown>")),
    )

    def _broadcast(self, data: bytes) -> None:
        """Send to every logged-in session whose ``Events`` filter takes this class (manager.c's event queue)."""
        for session in list(self.sessions):
            for index in range(self.flood):
                noise = self._FLOOD[index % len(self._FLOOD)]
                if session.accepts(noise):
                    session.send(noise)
            if session.accepts(data):
                session.send(data)
