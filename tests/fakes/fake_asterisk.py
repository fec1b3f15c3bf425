"""A fake Asterisk 22 for FastAGI tests, written from sessions captured from it (tests/agi/transcripts).

It connects to the server like ``AGI(agi://host:port/script)`` does, sends
the environment block of agi-probe-session.log, answers each command as
Asterisk does, and plays the caller with the simulator's ``ScriptedCaller``
(the ``--keys`` language), so a scenario gives the same call here and in
``autocall simulate``. Every line both ways goes into a ``Transcript``.

What it answers (citations are agi-probe-session.log unless said):

- ``STREAM FILE f "keys"``: the caller's ``on_play(keys)``; a key gives
  ``200 result=<ascii> endpos=N``, nothing ``200 result=0 endpos=8000``,
  ``h`` ``200 result=-1 endpos=N``; a sound outside ``known_sounds`` gives
  ``200 result=-1 endpos=0`` and the channel lives on (``no-such-file``).
- ``WAIT FOR DIGIT``: ``on_wait_digit()``: ``result=<ascii>``, ``result=0``
  on silence, ``result=-1`` on ``h``.
- ``RECORD FILE``: ``on_record(terminator)``: ``(dtmf)``, ``(timeout)``,
  ``(hangup)`` forms of res_agi.c, each with ``endpos``.
- ``ANSWER``, ``EXEC Wait``, ``EXEC Dial``, ``EXEC Queue``: ``on_step()`` for
  ``h``. Dial sets ``DIALSTATUS`` (``dial_status``, or a list: one per Dial
  in turn; ``ANSWER`` means bridged and over: Dial returns -1); several
  destinations (``PJSIP/101&PJSIP/102``) are rung at once and, answered,
  the first one answers (``DIALEDPEERNUMBER`` is its text after the
  technology, ``DIALEDPEERNAME`` its channel). Dial's ``A(sound)`` option is
  played to whoever answers (``announced``). An application not in
  ``KNOWN_APPS`` gives ``-2``.
- ``EXEC MixMonitor file,options`` attaches a recorder to the channel until
  ``StopMixMonitor`` or the hangup; with ``b`` it writes only while bridged,
  so an answered Dial lists the file in ``monitored`` (kept when either side
  hangs up first), an unanswered one writes nothing.
- ``EXEC Queue name,options,URL,announceoverride,timeout``: ``queue_status``;
  ``ANSWER`` is an agent taking the call: Queue sets ``MEMBERINTERFACE`` and
  ``MEMBERNAME``, plays the announcement to the agent, and returns -1 when
  the call is over (QUEUESTATUS is not set then); otherwise ``QUEUESTATUS``
  is set and Queue returns 0. A caller hanging up in the queue gives -1 and
  ``ABANDONED=TRUE``. ``caller_ends_bridge=True``: the caller, not the one
  who answered, hangs up the bridge, so the channel is gone after an
  answered Dial or Queue (the ``HANGUP`` line before the next reply).
- After the caller hangs up, the ``HANGUP`` line goes out before the reply
  to the next command (#5024, #5088, #6048); later channel commands get
  ``511``, while ``NOOP``, ``GET VARIABLE``, ``SET VARIABLE``, ``EXEC``
  and ``VERBOSE`` still answer (res_agi.c's dead-channel table; #7776).
  After the server's ``HANGUP``: ``200 result=1`` and the ``HANGUP`` line.
  ``exit_on_hangup`` (``AGIEXITONHANGUP=yes``, #6624) sends ``HANGUP`` twice
  and closes the socket.
- Unknown commands: ``510``; missing arguments: the ``520`` usage block.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.protocols.basic import LineOnlyReceiver

from autocall.agi.protocol import Environment, parse_command_line
from autocall.sim.caller import HANGUP, KEY_CHARS, ScriptedCaller

FROM_ASTERISK = "<<"
FROM_SERVER = ">>"
FULL_ENDPOS = 8000        # a one-second prompt played to the end (probe-1s)
PARTIAL_ENDPOS = 4000     # where a barge-in or a hangup stopped it
RECORD_ENDPOS = 16000
DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
UNKNOWN = "510 Invalid or unknown command"
KNOWN_APPS = frozenset({"wait", "dial", "playback", "noop", "verbose", "set", "hangup", "queue", "mixmonitor",
                        "stopmixmonitor"})
AGENT = "PJSIP/agent1"        # the queue member who answers
# res_agi.c's commands with dead=1: they still run once the channel has hung up.
ALLOWED_WHEN_DEAD = frozenset({"EXEC", "GET VARIABLE", "GET FULL VARIABLE", "NOOP", "SET VARIABLE", "VERBOSE"})

# Usage texts verbatim from agi-probe-session.log; other commands get the first line only.
USAGE = {
    "WAIT FOR DIGIT": (
        "Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a DTMF digit. "
        "Returns <literal>-1</literal> on channel failure, <literal>0</literal> if no digit is received in "
        "the timeout, or the numerical value of the ascii of the digit if one is received. Use "
        "<literal>-1</literal> for the <replaceable>timeout</replaceable> value if you desire the call to "
        "block indefinitely.",),
    "GET DATA": ("Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
                 "Returns the digits received from the channel at the other end."),
    "STREAM FILE": (
        "Send the given file, allowing playback to be interrupted by the given digits, if any. Returns "
        "<literal>0</literal> if playback completes without a digit being pressed, or the ASCII numerical "
        "value of the digit if one was pressed, or <literal>-1</literal> on error or if the channel was "
        "disconnected. If musiconhold is playing before calling stream file it will be automatically "
        "stopped and will not be restarted after completion.",
        "It sets the following channel variables upon completion:",
        "<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.",
        "    <value>SUCCESS</value>",
        "    <value>FAILED</value>"),
    "SET VARIABLE": ("Sets a variable to the current channel.",),
}

# Command name -> the number of words after it that res_agi.c accepts (min, max).
ARITY = {
    "ANSWER": (0, 99), "STREAM FILE": (2, 3), "WAIT FOR DIGIT": (1, 1), "GET DATA": (1, 3),
    "RECORD FILE": (4, 8), "EXEC": (1, 99), "SET VARIABLE": (2, 2), "GET VARIABLE": (1, 1),
    "GET FULL VARIABLE": (1, 2), "HANGUP": (0, 1), "NOOP": (0, 99), "VERBOSE": (1, 2),
    "CHANNEL STATUS": (0, 1),
}
_BY_LENGTH = sorted(ARITY, key=lambda name: -len(name.split()))


def transcript_environment(script: str = "probe", *, args: Iterable[str] = (), callerid: str = "5550100",
                           calleridname: str = "Probe", uniqueid: str = "1795685563.1", extension: str = "s",
                           host: str = "127.0.0.1:4573", extra: Mapping[str, str] | None = None) -> Environment:
    """The environment block of agi-probe-session.log, in its order, with the given overrides."""
    fields = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://{host}/{script}",
        "agi_channel": f"Local/{extension}@ivr-00000000;2",
        "agi_language": "en",
        "agi_type": "Local",
        "agi_uniqueid": uniqueid,
        "agi_version": "22.10.1",
        "agi_callerid": callerid,
        "agi_calleridname": calleridname,
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": "unknown",
        "agi_rdnis": "unknown",
        "agi_context": "ivr",
        "agi_extension": extension,
        "agi_priority": "3",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140029568296640",
    }
    for number, value in enumerate(args, start=1):
        fields[f"agi_arg_{number}"] = value
    fields.update(extra or {})
    return Environment(fields)


@dataclass
class Transcript:
    """What one fake call saw: every line both ways, who closed, and the call's side effects."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    closed_by: str | None = None          # "server" or "asterisk"
    variables: dict[str, str] = field(default_factory=dict)
    played: list[str] = field(default_factory=list)
    dialled: list[str] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    pressed: list[str] = field(default_factory=list)
    announced: list[str] = field(default_factory=list)   # sounds played to whoever answered a Dial or Queue
    queued: list[str] = field(default_factory=list)      # Queue's arguments, one entry per Queue
    monitored: list[str] = field(default_factory=list)   # MixMonitor files written (a bridge was recorded)

    def commands(self) -> list[str]:
        """The lines the server sent."""
        return [line for direction, line in self.lines if direction == FROM_SERVER]

    def after_environment(self) -> list[tuple[str, str]]:
        """The conversation after the blank line that ends the environment."""
        for index, (direction, line) in enumerate(self.lines):
            if direction == FROM_ASTERISK and line == "":
                return self.lines[index + 1:]
        return []

    def render(self) -> str:
        """The lines in the transcripts' notation: ``<< '200 result=0\\n'``."""
        body = "".join(f"{direction} {line + chr(10)!r}\n" for direction, line in self.lines)
        return body + f"-- closed by {self.closed_by}\n"


class FakeAsterisk:
    """One call's setup; ``protocol()`` builds a fresh client protocol, ``call()`` dials a server over TCP.

    ``replies`` replaces the reply to the Nth command (1-based) with raw
    lines (a 520 block mid-call, garbage...). ``hangup_after_reply=N`` sends
    the unprompted ``HANGUP`` line right after the Nth reply, while the
    server is still thinking. ``hangup_notice="immediate"`` sends the
    ``HANGUP`` line right after a ``-1`` reply instead of before the next
    reply. ``env_chunk`` writes the environment in pieces of that many bytes.
    ``typeahead`` makes the caller press the next key while any prompt plays
    (Asterisk keeps it only if it is an escape digit, and throws it away
    otherwise: "Keys not in the escape set are thrown away during playback").
    ``bridge_hangup``: with ``dial_status="ANSWER"``, an ``h`` at ``EXEC Dial``
    is the caller hanging up while bridged (``DIALSTATUS`` stays ``ANSWER``),
    not a hangup before the destination answered.
    """

    def __init__(self, script: str = "probe", *, keys: str = "", args: Iterable[str] = (),
                 callerid: str = "5550100", uniqueid: str = "1795685563.1",
                 environment: Environment | None = None, known_sounds: Iterable[str] | None = None,
                 dial_status: str | list[str] = "NOANSWER", queue_status: str = "TIMEOUT",
                 exit_on_hangup: bool = False, caller_ends_bridge: bool = False,
                 variables: Mapping[str, str] | None = None, hangup_after_reply: int | None = None,
                 replies: Mapping[int, list[str]] | None = None, hangup_notice: str = "before_next_reply",
                 env_chunk: int | None = None, typeahead: bool = False, bridge_hangup: bool = False) -> None:
        if hangup_notice not in ("before_next_reply", "immediate"):
            raise ValueError(f"hangup_notice: {hangup_notice!r}")
        self.environment = environment or transcript_environment(
            script, args=args, callerid=callerid, uniqueid=uniqueid)
        self.keys = keys
        self.known_sounds = None if known_sounds is None else frozenset(known_sounds)
        self.dial_status = dial_status
        self.queue_status = queue_status
        self.caller_ends_bridge = caller_ends_bridge
        self.exit_on_hangup = exit_on_hangup
        self.variables = dict(variables or {})
        self.hangup_after_reply = hangup_after_reply
        self.replies = dict(replies or {})
        self.hangup_notice = hangup_notice
        self.env_chunk = env_chunk
        self.typeahead = typeahead
        self.bridge_hangup = bridge_hangup

    def protocol(self) -> FakeAsteriskProtocol:
        return FakeAsteriskProtocol(self)

    def call(self, reactor, host: str, port: int) -> defer.Deferred:
        """Connect over TCP; fire with the ``Transcript`` once the connection closes."""
        proto = self.protocol()
        d = connectProtocol(TCP4ClientEndpoint(reactor, host, port, timeout=5), proto)
        d.addCallback(lambda _: proto.finished)
        return d


class FakeAsteriskProtocol(LineOnlyReceiver):
    """The Asterisk end of one FastAGI connection."""

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, setup: FakeAsterisk) -> None:
        self.setup = setup
        self.caller = ScriptedCaller(setup.keys)
        self.transcript = Transcript(variables={"CHANNEL": setup.environment.channel, **setup.variables},
                                     pressed=self.caller.pressed)
        self.finished: defer.Deferred = defer.Deferred()
        self.dead = False            # the channel has hung up and the HANGUP line went out
        self.owes_hangup = False     # hung up; the HANGUP line goes out before the next reply
        self.count = 0
        self.closing = False
        self.dials = 0
        self.monitor: tuple[str, str] | None = None     # the MixMonitor attached: (file, options)

    # --- connection ----------------------------------------------------------

    def connectionMade(self) -> None:
        block = self.setup.environment.to_bytes()
        for line in block.decode().split("\n")[:-1]:
            self.transcript.lines.append((FROM_ASTERISK, line))
        chunk = self.setup.env_chunk or len(block)
        for start in range(0, len(block), chunk):
            self.transport.write(block[start:start + chunk])

    def connectionLost(self, reason=None) -> None:
        if self.transcript.closed_by is None:
            self.transcript.closed_by = "server"
        self.finished.callback(self.transcript)

    def _send(self, line: str) -> None:
        self.transcript.lines.append((FROM_ASTERISK, line))
        self.transport.write(line.encode() + b"\n")

    def _close(self) -> None:
        self.closing = True
        self.transcript.closed_by = "asterisk"
        self.transport.loseConnection()

    # --- the AGI loop ----------------------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\r")
        self.transcript.lines.append((FROM_SERVER, text))
        if self.closing:
            return
        self.count += 1
        if self.owes_hangup:
            # res_agi.c's loop notices the hangup before it reads the next command.
            self._hangup_line()
            if self.closing:
                return
        override = self.setup.replies.get(self.count)
        if override is not None:
            lines, hung_up = list(override), False
        else:
            lines, hung_up = self._answer(parse_command_line(text))
        for reply in lines:
            self._send(reply)
        if hung_up:
            self.owes_hangup = True
            if self.setup.hangup_notice == "immediate":
                self._hangup_line()
        if self.setup.hangup_after_reply == self.count and not self.dead:
            self._hangup_line()

    def _hangup_line(self) -> None:
        self.owes_hangup = False
        self.dead = True
        self._send("HANGUP")
        if self.setup.exit_on_hangup:
            self._send("HANGUP")      # twice, then EOF (#6624)
            self._close()

    def _answer(self, argv: list[str]) -> tuple[list[str], bool]:
        words = [word.upper() for word in argv]
        for name in _BY_LENGTH:
            size = len(name.split())
            if words[:size] == name.split():
                args = argv[size:]
                break
        else:
            return [UNKNOWN], False
        if self.dead and name not in ALLOWED_WHEN_DEAD:
            return [DEAD], False
        low, high = ARITY[name]
        if not low <= len(args) <= high:
            usage = USAGE.get(name, ("Usage not recorded for this command.",))
            return ["520-Invalid command syntax.  Proper usage follows:", *usage,
                    "520 End of proper usage."], False
        return getattr(self, "do_" + name.lower().replace(" ", "_"))(args)

    # --- commands: each returns (reply lines, whether the caller hung up) ----

    def do_answer(self, args):
        if self.caller.on_step() == HANGUP:
            return ["200 result=-1"], True
        return ["200 result=0"], False

    def do_stream_file(self, args):
        name, escapes = args[0], args[1]
        self.transcript.played.append(name)
        known = self.setup.known_sounds
        if known is not None and name not in known:
            # Nothing plays, so no key is drawn; a caller hanging up here still does.
            return ["200 result=-1 endpos=0"], self.caller.on_step() == HANGUP
        if len(args) > 2 and not self.setup.typeahead:
            # The server resumes a prompt a key stopped (type-ahead): the --keys caller, who presses keys
            # only when an input waits, lets it play to the end.
            return [f"200 result=0 endpos={FULL_ENDPOS}"], False
        key = self.caller.on_play(escapes)
        if key is None and self.setup.typeahead:
            pressed = self.caller.on_play(KEY_CHARS)
            if pressed is not None and pressed not in escapes:
                key = None                # pressed during playback and thrown away
            else:
                key = pressed
        if key == HANGUP:
            return [f"200 result=-1 endpos={PARTIAL_ENDPOS}"], True
        if key:
            return [f"200 result={ord(key)} endpos={PARTIAL_ENDPOS}"], False
        return [f"200 result=0 endpos={FULL_ENDPOS}"], False

    def do_wait_for_digit(self, args):
        key = self.caller.on_wait_digit()
        if key == HANGUP:
            return ["200 result=-1"], True
        return [f"200 result={ord(key) if key else 0}"], False

    def do_get_data(self, args):
        self.transcript.played.append(args[0])
        most = int(args[2]) if len(args) > 2 else 1024
        digits = ""
        while len(digits) < most:
            key = self.caller.on_wait_digit()
            if key == HANGUP:
                return ["200 result=-1"], True
            if key is None:
                return [f"200 result={digits} (timeout)"], False
            if key == "#":
                break
            digits += key
        return [f"200 result={digits}"], False

    def do_record_file(self, args):
        path, fmt, escapes = args[0], args[1], args[2]
        self.transcript.recordings.append(f"{path}.{fmt}")
        key = self.caller.on_record(escapes if len(escapes) == 1 else None)
        if key == HANGUP:
            return [f"200 result=-1 (hangup) endpos={RECORD_ENDPOS}"], True
        if key:
            return [f"200 result={ord(key)} (dtmf) endpos={RECORD_ENDPOS}"], False
        return [f"200 result=0 (timeout) endpos={RECORD_ENDPOS}"], False

    def do_exec(self, args):
        app, options = args[0].lower(), (args[1] if len(args) > 1 else "")
        if app not in KNOWN_APPS:
            return ["200 result=-2"], False
        if self.dead:
            return ["200 result=-1"], False           # the application sees a hung-up channel
        if app == "dial":
            return self._dial(options)
        if app == "queue":
            return self._queue(options)
        if app == "mixmonitor":
            file, _, flags = options.partition(",")
            self.monitor = (file, flags)
            return ["200 result=0"], False
        if app == "stopmixmonitor":
            self.monitor = None
            return ["200 result=0"], False
        if app == "wait" and self.caller.on_step() == HANGUP:
            return ["200 result=-1"], True
        return ["200 result=0"], False

    def _dial(self, options: str):
        self.transcript.dialled.append(options)
        destinations, _, rest = options.partition(",")
        variables = self.transcript.variables
        statuses = self.setup.dial_status
        status = statuses if isinstance(statuses, str) else statuses[min(self.dials, len(statuses) - 1)]
        self.dials += 1
        if self.caller.on_step() == HANGUP:
            bridged = self.setup.bridge_hangup and status == "ANSWER"
            variables["DIALSTATUS"] = "ANSWER" if bridged else "CANCEL"
            if bridged:
                self._answered(destinations, rest)
            return ["200 result=-1"], True
        variables["DIALSTATUS"] = status
        if status != "ANSWER":
            return ["200 result=0"], False
        self._answered(destinations, rest)
        return ["200 result=-1"], self.setup.caller_ends_bridge

    def _answered(self, destinations: str, rest: str) -> None:
        """The first destination answered: Dial's variables, the announcement, the recording."""
        first = destinations.split("&")[0]
        variables = self.transcript.variables
        variables["DIALEDPEERNUMBER"] = first.partition("/")[2]
        variables["DIALEDPEERNAME"] = f"{first.partition('@')[0]}-00000001"
        self._bridged(re.search(r"A\(([^)]*)\)", rest.partition(",")[2]))

    def _queue(self, options: str):
        self.transcript.queued.append(options)
        fields = (options.split(",") + [""] * 5)[:5]
        variables = self.transcript.variables
        if self.caller.on_step() == HANGUP:
            variables["ABANDONED"] = "TRUE"
            return ["200 result=-1"], True
        status = self.setup.queue_status
        if status != "ANSWER":
            variables["QUEUESTATUS"] = status
            return ["200 result=0"], False
        variables["MEMBERINTERFACE"] = AGENT
        variables["MEMBERNAME"] = "agent1"
        self._bridged(re.match(r"(.+)", fields[3]))
        return ["200 result=-1"], self.setup.caller_ends_bridge

    def _bridged(self, announcement) -> None:
        """Someone answered: they hear the announcement, then the bridge is recorded if a monitor is on."""
        if announcement is not None:
            self.transcript.announced.append(announcement.group(1))
        if self.monitor is not None and self.monitor[0] not in self.transcript.monitored:
            self.transcript.monitored.append(self.monitor[0])

    def do_set_variable(self, args):
        self.transcript.variables[args[0]] = args[1]
        return ["200 result=1"], False

    def do_get_variable(self, args):
        value = self.transcript.variables.get(args[0])
        return ([f"200 result=1 ({value})"] if value is not None else ["200 result=0"]), False

    def do_get_full_variable(self, args):
        value = re.sub(r"\$\{([^}]*)\}", lambda m: self.transcript.variables.get(m.group(1), ""), args[0])
        return ([f"200 result=1 ({value})"] if value else ["200 result=0"]), False

    def do_hangup(self, args):
        # 200 result=1, then Asterisk's own HANGUP line (it came 44 ms later in #2848).
        self._send("200 result=1")
        self._hangup_line()
        return [], False

    def do_noop(self, args):
        return ["200 result=0"], False

    def do_verbose(self, args):
        return ["200 result=1"], False

    def do_channel_status(self, args):
        return ["200 result=6"], False


class RawPeer(Protocol):
    """A peer that is not Asterisk: writes ``send``, optionally closes at once, and records what came back."""

    def __init__(self, send: bytes = b"", close: bool = False) -> None:
        self.to_send = send
        self.close_at_once = close
        self.received = b""
        self.finished: defer.Deferred = defer.Deferred()

    def connectionMade(self) -> None:
        if self.to_send:
            self.transport.write(self.to_send)
        if self.close_at_once:
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason=None) -> None:
        self.finished.callback(self)


def connect_raw(reactor, host: str, port: int, send: bytes = b"", close: bool = False) -> defer.Deferred:
    """Connect a ``RawPeer``; fire with it once connected (its ``finished`` fires when the socket closes)."""
    return connectProtocol(TCP4ClientEndpoint(reactor, host, port, timeout=5), RawPeer(send, close))
