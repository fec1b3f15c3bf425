"""``AgiChannel``: the engine's ``Channel`` over a FastAGI connection.

Each method is one or two AGI commands. Digit collection stays in the
engine (menu and gather semantics are the interpreter's, shared with the
simulator); this channel only plays with barge-in keys (``STREAM FILE``) and
waits for single keys (``WAIT FOR DIGIT``), exactly what the simulator's
scripted caller answers, so a ``--keys`` scenario gives the same call here.

Failures map to the two engine exceptions:

- ``CallerHangup``: a ``511`` (dead channel), ``result=-1`` from a
  caller-facing command, Asterisk's ``HANGUP`` line seen before a command,
  or the connection closing (``AGIEXITONHANGUP=yes``).
- ``ChannelFailure``: a protocol fault, with whose it is: ``510``/``520``
  mean we sent a bad command (ours); garbage from the peer is Asterisk's.

When is ``result=-1`` from ``STREAM FILE`` a hangup? (from sessions captured
from Asterisk 22.10.1, kept in ``tests/agi/transcripts`` and ``tests/ami/transcripts``)

- A missing sound answers ``200 result=-1 endpos=0`` and the call goes on:
  agi-probe-session.log ``STREAM FILE no-such-file "1"``; ami-facts.log shows
  ``AGIExecEnd ResultCode: -1`` with no ``Hangup`` event, and the next
  command (``GET DATA``) is answered normally.
- A hangup mid-prompt answers ``200 result=-1 endpos=12000``
  (ami-hangupstream.log: ``Event: Hangup`` precedes ``AGIExecEnd
  ResultCode: -1``), and then Asterisk sends the ``HANGUP`` line *before* it
  answers the next command, which gets ``511`` (agi-probe-session.log
  #5088: ``>> STREAM FILE``, ``<< HANGUP``, ``<< 511``; the same order after
  ``WAIT FOR DIGIT`` in #5024 and #6048, and after ``SET VARIABLE`` in #7776).
  With ``AGIEXITONHANGUP=yes`` it sends ``HANGUP`` and closes instead
  (ami-exitonhangup.log, #6624).
- A hangup at the very start of a prompt would also give ``endpos=0``, and
  the ``HANGUP`` line may arrive only after we act (it came 1 ms after our
  next command in #5088). So ``endpos`` alone cannot decide.

The rule: after ``result=-1`` (and no ``HANGUP`` line yet) send one probe,
``CHANNEL STATUS``. It is a hangup if the ``HANGUP`` line arrives before the
probe's reply, or the probe gets ``511`` (dead channel: ami-hangupwait.log),
or the connection closes; otherwise the channel is alive and the playback
failed: with ``endpos=0`` a missing sound, logged as an error of the script
and taken as played (``None``). ``511`` covers ``AGISIGHUP=no``, where
Asterisk sends no ``HANGUP`` line. ``RECORD FILE``'s ``-1`` uses the same
probe, except ``(hangup)``, a hangup mid-recording whose file is kept
(``RecordOutcome(hung_up=True)``), and ``(writefile)``, a recordings folder
Asterisk cannot write.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import types
from collections import deque
from typing import Protocol

from twisted.internet import defer
from twisted.internet.error import ConnectionClosed

from autocall.agi import protocol as agi
from autocall.agi.protocol import AgiProtocolError, LocalProtocolError, RemoteProtocolError, Response, UsageError
from autocall.engine.channel import ALL_KEYS, CallerHangup, ChannelFailure, DialOutcome, Prompt, RecordOutcome, TtsPrompt

log = logging.getLogger("autocall.agi.channel")

RECORDING_FORMAT = "wav"
MAX_TYPEAHEAD = 64          # keys kept ahead of the inputs; past this a prompt lets Asterisk drop them
DEFAULT_TTS_MAX_CHARS = 3_000
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class Sounds(Protocol):
    """Where prompts become sound names Asterisk can play (``autocall.agi.sounds.PlayableSounds``).

    Optional: ``known(prompt)``, the name at once when it needs no work, else None.
    """

    def sound_for(self, prompt: Prompt) -> defer.Deferred:
        """Fire with the name to give ``STREAM FILE`` (a path without extension, or a PBX sound)."""


class AgiConnectionLike(Protocol):
    """What the channel uses of ``autocall.agi.connection.FastAgiProtocol``."""

    environment: agi.Environment | None
    hung_up: bool

    def send_command(self, command: agi.Command) -> defer.Deferred: ...

    # Optional: ``issue(command)`` and ``reply_deferred()`` (``FastAgiProtocol``): the reply without a
    # Deferred; without them the channel awaits ``send_command``.


class AgiChannel:
    """One call's ``Channel`` over FastAGI. Times are in milliseconds, as in the interface."""

    __slots__ = ("_connection", "_issue", "_until_lost", "_sounds", "_known", "_recordings_dir", "_log", "_recorded",
                 "_typed", "_private", "_tts_left")

    def __init__(self, connection: AgiConnectionLike, sounds: Sounds, recordings_dir: str,
                 *, logger: logging.Logger | logging.LoggerAdapter | None = None,
                 tts_max_chars: int = DEFAULT_TTS_MAX_CHARS) -> None:
        self._connection = connection
        self._issue = getattr(connection, "issue", None)
        self._until_lost = getattr(connection, "until_lost", None)
        self._sounds = sounds
        self._known = getattr(sounds, "known", None)
        self._recordings_dir = recordings_dir
        self._log = logger or log
        self._recorded: dict[str, int] | None = None
        self._typed: deque[str] | None = None      # type-ahead: keys pressed while a prompt spoke
        self._private: list[str] | None = None     # secret prompts' sounds, discarded by close()
        self._tts_left = tts_max_chars              # characters this call may still send to text-to-speech

    @property
    def call_id(self) -> str:
        environment = self._connection.environment
        return environment.uniqueid if environment is not None else ""

    # --- Channel -------------------------------------------------------------

    async def answer(self) -> None:
        reply = await self._send(agi.answer)
        if reply.result == -1:
            raise CallerHangup("the caller hung up before the answer")

    async def play(self, prompt: Prompt, interrupt_keys: str = "") -> str | None:
        typed = self._typed
        if typed and interrupt_keys and typed[0] in interrupt_keys:
            return typed.popleft()              # typed ahead: the prompt is interrupted before it starts
        name = self._known(prompt) if self._known is not None else None
        if name is None:
            name = await self._make_sound(prompt)
            if name is None:
                return None
            if getattr(prompt, "secret", False):
                if self._private is None:
                    self._private = []
                self._private.append(name)
        # Every key stops STREAM FILE, since Asterisk throws away keys that are not escape digits. A key
        # that may not interrupt this prompt is kept for the next input, and the prompt resumes where
        # it stopped (endpos): the caller hears it to the end, as in the simulator.
        offset = None
        while True:
            escapes = interrupt_keys or (ALL_KEYS if typed is None or len(typed) < MAX_TYPEAHEAD else "")
            reply = await self._send(agi.stream_file, name, escapes, offset)
            result = reply.result
            if result == 0:                     # the usual answers first (what _key_of says of them)
                return None
            if result is None or not 32 < result < 127:
                break
            key = chr(result)
            if key in interrupt_keys:
                return key
            if typed is None:
                typed = self._typed = deque()
            typed.append(key)
            offset = reply.endpos or 0
        if result != -1:                        # the rest of _key_of: -1, or Asterisk's fault
            raise _unexpected(reply, "STREAM FILE")
        if not await self._caller_alive():
            raise CallerHangup(f"the caller hung up during the prompt {name!r}")
        what = "is missing on the PBX" if not reply.endpos else f"stopped at sample {reply.endpos}"
        self._log.error("call %s: error in the script's audio: sound %r %s (STREAM FILE answered %r); "
                        "the prompt was skipped", self.call_id, name, what, reply.raw)
        return None

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        if self._typed:
            return self._typed.popleft()
        reply = await self._send(agi.wait_for_digit, timeout_ms)
        result = reply.result
        if result is not None and 32 < result < 127:    # the usual answers first (what _key_of says of them)
            return chr(result)
        if result == 0:
            return None
        if result != -1:                        # the rest of _key_of: -1, or Asterisk's fault
            raise _unexpected(reply, "WAIT FOR DIGIT")
        raise CallerHangup("the caller hung up while we waited for a key")

    async def pause(self, duration_ms: int) -> None:
        if duration_ms <= 0:
            return
        reply = await self._send(agi.exec_app, "Wait", _seconds(duration_ms))
        if reply.result == -1:
            raise CallerHangup("the caller hung up during a wait")
        if reply.result == -2:
            raise ChannelFailure("Asterisk has no Wait application (EXEC Wait answered result=-2)")

    async def record(self, name: str, max_ms: int, silence_ms: int, beep: bool,
                     terminator: str | None) -> RecordOutcome:
        path = self._recording_path(name)
        file = f"{path}.{RECORDING_FORMAT}"
        silence_s = math.ceil(silence_ms / 1000) if silence_ms > 0 else None
        own_beep = getattr(self._sounds, "beep", None)
        if beep and own_beep is not None:
            # Our beep, not RECORD FILE's: that one needs Asterisk's core sounds, and without them the
            # recording fails before it starts ("(randomerror)").
            # No escape digits: a key pressed during the beep belongs to the recording about to start.
            played = await self._send(agi.stream_file, own_beep(), "")
            if played.result == -1 and not await self._caller_alive():
                raise CallerHangup("the caller hung up during the beep before the recording")
            beep = False
        reply = await self._send(agi.record_file, path, RECORDING_FORMAT, terminator or "",
                                 max_ms if max_ms > 0 else -1, beep, silence_s)
        key, failed = _key_of(reply, "RECORD FILE")
        if not failed:
            return RecordOutcome(file, key)
        if reply.data == "writefile":
            raise ChannelFailure(f"Asterisk could not write the recording {file!r} "
                                 "(RECORD FILE answered (writefile)); is recordings_dir writable by Asterisk?")
        if reply.data == "hangup":
            # The message so far is on disk: the engine keeps it, then ends the call.
            return RecordOutcome(file, None, hung_up=True)
        if not await self._caller_alive():
            raise CallerHangup(f"the caller hung up before the recording {file!r} began")
        self._log.error("call %s: the recording %r failed (RECORD FILE answered %r); nothing was recorded",
                        self.call_id, file, reply.raw)
        return RecordOutcome("")

    async def transfer(self, destinations: tuple[str, ...], timeout_ms: int | None, callerid: str | None,
                       announce: Prompt | None = None, recording: str | None = None) -> DialOutcome:
        """One ``Dial``: the destinations joined with ``&`` (each one checked by the engine, and here for
        what the script itself wrote), the announcement as ``A(sound)`` with ``r`` (the caller hears
        ringing until the bridge), the conversation recorded by ``MixMonitor`` (see docs/language.md)."""
        for destination in destinations:
            if not destination or "," in destination or destination != destination.strip():
                # A comma would hand the rest of the string to Dial as options.
                raise ChannelFailure(f"transfer: {destination!r} is not a dial destination")
        if callerid:
            await self._send(agi.set_variable, "CALLERID(all)", callerid)
        options = ""
        if announce is not None:
            sound = await self._sound_of(announce)
            if sound is not None:
                options = f"A({_option_argument(sound, 'announcement')})r"
        file = None
        if recording is not None:
            file = f"{self._recording_path(recording)}.{RECORDING_FORMAT}"
        wanted = "&".join(destinations)
        seconds = "" if timeout_ms is None else str(max(1, math.ceil(timeout_ms / 1000)))
        arguments = ",".join((wanted, seconds, options)).rstrip(",")
        if self._connection.hung_up:
            raise CallerHangup("the caller hung up before the transfer (Asterisk's HANGUP line came first)")
        if file is not None:
            await self._start_monitor(file)
        try:
            dialled = await self._send(agi.exec_app, "Dial", arguments)
            if dialled.result == -2:
                raise ChannelFailure("Asterisk has no Dial application (EXEC Dial answered result=-2)")
            # GET VARIABLE still answers on a dead channel (agi-probe-session.log #5024).
            status = await self.get_variable("DIALSTATUS") or ""
            answered = None
            if status == "ANSWER" and len(destinations) > 1:
                answered = _answered_index(destinations, await self.get_variable("DIALEDPEERNUMBER") or "")
        except CallerHangup as gone:
            # Dialled, then the socket closed (AGIEXITONHANGUP=yes): the status is lost with it.
            raise CallerHangup(str(gone), dialstatus="") from None
        finally:
            if file is not None:
                await self._stop_monitor()
        if status == "ANSWER":
            return DialOutcome(status, answered, file)   # bridged, and the bridge is over: Dial returns -1
        if dialled.result == -1 or self._connection.hung_up:
            raise CallerHangup(f"the caller hung up while {wanted!r} was dialled ({status or 'no status'})",
                               dialstatus=status)
        if not status:
            raise ChannelFailure(f"Dial of {wanted!r} ended without setting DIALSTATUS")
        return DialOutcome(status)

    async def queue(self, name: str, timeout_ms: int | None, announce: Prompt | None = None) -> str:
        """``Queue(name,,,announce,timeout)``. An agent answered when Queue set ``MEMBERINTERFACE`` (the
        answering member) on the caller's channel; otherwise ``QUEUESTATUS`` says why not."""
        if not name or "," in name or name != name.strip():
            raise ChannelFailure(f"queue: {name!r} is not a queue name")
        sound = await self._sound_of(announce) if announce is not None else None
        sound = _option_argument(sound, "announcement") if sound is not None else ""
        seconds = "" if timeout_ms is None else str(max(1, math.ceil(timeout_ms / 1000)))
        joined = await self._send(agi.exec_app, "Queue", ",".join((name, "", "", sound, seconds)).rstrip(","))
        if joined.result == -2:
            raise ChannelFailure("Asterisk has no Queue application (EXEC Queue answered result=-2)")
        if await self.get_variable("MEMBERINTERFACE"):
            return "ANSWER"
        status = await self.get_variable("QUEUESTATUS") or ""
        if joined.result == -1 or self._connection.hung_up:
            raise CallerHangup(f"the caller hung up while waiting in the queue {name!r}")
        if not status:
            raise ChannelFailure(f"Queue {name!r} ended without setting QUEUESTATUS")
        return status

    async def get_variable(self, name: str) -> str | None:
        """``GET VARIABLE name``: its value, or None when unset. It still answers on a dead channel
        (agi-probe-session.log #5024), so it is not refused after Asterisk's ``HANGUP`` line."""
        reply = await self._send(agi.get_variable, name, caller_facing=False)
        return reply.data if reply.result == 1 and reply.data is not None else None

    async def set_variable(self, name: str, value: str) -> None:
        # Allowed on a dead channel (agi-probe-session.log #7776), so no hung_up check first.
        await self._send(agi.set_variable, name, value, caller_facing=False)

    async def hangup(self) -> None:
        reply = await self._send(agi.hangup)
        if reply.result == -1:
            raise CallerHangup("the caller had already hung up")

    def close(self) -> None:
        """The call is over: delete the sounds rendered for its secret prompts."""
        discard = getattr(self._sounds, "discard", None)
        if self._private and discard is not None:
            for name in self._private:
                discard(name)
        self._private = None

    # --- internals -----------------------------------------------------------

    @types.coroutine
    def _send(self, build, *args, caller_facing: bool = True):
        """Build and send one command; return its 200 reply or raise the engine's exception.

        The one mapping from AGI replies to errors, for the server's own commands too
        (``get_variable``): 511 (dead channel) and a closed connection are ``CallerHangup``; 510, 520
        and our own malformed command are ``ChannelFailure`` (ours); garbage or an unexpected code is
        ``ChannelFailure`` (Asterisk's).

        A generator-based coroutine that yields straight to the call's driver
        (``FastAgiProtocol.issue``): one frame less on the way of every reply.
        """
        connection = self._connection
        try:
            command = build(*args)
        except LocalProtocolError as exc:
            raise ChannelFailure(f"AGI protocol fault (ours): {exc}") from None
        if caller_facing and connection.hung_up:
            raise CallerHangup(f"the caller hung up (Asterisk's HANGUP line came before {command.name})")
        try:
            if self._issue is not None and self._issue(command):
                reply = yield connection
                if reply is connection:         # not driven by the connection's call task
                    reply = yield connection.reply_deferred()
            else:
                reply = yield from connection.send_command(command)
        except ConnectionClosed:
            raise CallerHangup(f"Asterisk closed the connection during {command.name}") from None
        except RemoteProtocolError as exc:
            raise ChannelFailure(f"AGI protocol fault (Asterisk's) during {command.name}: {exc}") from None
        except AgiProtocolError as exc:
            raise ChannelFailure(f"AGI protocol fault (ours) during {command.name}: {exc}") from None
        if type(reply) is UsageError:
            usage = f": {reply.lines[0]}" if reply.lines else ""
            raise ChannelFailure(f"AGI protocol fault (ours): Asterisk refused the syntax of "
                                 f"{command.line!r} (520){usage}")
        code = reply.code
        if code == 200:
            return reply
        if code == 511:
            raise CallerHangup(f"the caller hung up (511 dead channel on {command.name})")
        if code == 510:
            raise ChannelFailure(f"AGI protocol fault (ours): Asterisk does not know the command "
                                 f"{command.line!r} (510)")
        raise _unexpected(reply, command.name)

    async def _sound_of(self, prompt: Prompt) -> str | None:
        """The sound name of a prompt someone else hears (an announcement)."""
        name = self._known(prompt) if self._known is not None else None
        return name if name is not None else await self._make_sound(prompt)

    async def _make_sound(self, prompt: Prompt) -> str | None:
        """Render or convert a prompt (a text-to-speech prompt within the call's budget: None once it is
        spent) and give the name Asterisk plays it by."""
        if type(prompt) is TtsPrompt:
            prompt = self._within_budget(prompt)
            if prompt is None:
                return None
        try:
            made = self._sounds.sound_for(prompt)
            return await (self._until_lost(made) if self._until_lost is not None else made)
        except ConnectionClosed:
            raise CallerHangup("Asterisk closed the connection while the prompt was being made") from None
        except RemoteProtocolError as exc:
            raise ChannelFailure(f"AGI protocol fault (Asterisk's) while the prompt was being made: {exc}") from None

    async def _start_monitor(self, file: str) -> None:
        """``MixMonitor(file,ab)``: both sides mixed, written only while bridged (``b``: nothing while it
        rings), appended (``a``: the tries of a ``ring in order`` share the file)."""
        started = await self._send(agi.exec_app, "MixMonitor", f"{_option_argument(file, 'recording')},ab")
        if started.result == -2:
            raise ChannelFailure("Asterisk has no MixMonitor application (EXEC MixMonitor answered result=-2); "
                                 "load app_mixmonitor.so to record transfers")

    async def _stop_monitor(self) -> None:
        """Close the recording; on a channel already gone Asterisk closed it with the channel."""
        if self._connection.hung_up:
            return
        try:
            await self._send(agi.exec_app, "StopMixMonitor", caller_facing=False)
        except CallerHangup:
            pass

    def _within_budget(self, prompt: TtsPrompt) -> TtsPrompt | None:
        """A text-to-speech prompt to make for this call, cut to what the call may still render
        (``tts_max_chars`` in all: one call's endless text must not hold the TTS worker for everyone's);
        None, and the prompt skipped, once nothing is left. Logged (the length, never the text)."""
        text = prompt.text
        left = self._tts_left
        if len(text) <= left:
            self._tts_left = left - len(text)
            return prompt
        cut = text[:left]
        cut = cut[:max(cut.rfind(" "), 0)]       # at a word's end (no word fits: nothing)
        self._tts_left = left - len(cut)
        if not cut.strip():
            self._log.warning("call %s: a text-to-speech prompt of %d characters was skipped: the call has used "
                              "all the text it may render (tts_max_chars)", self.call_id, len(text))
            return None
        self._log.warning("call %s: text-to-speech prompt cut from %d to %d characters: a call may render at "
                          "most tts_max_chars", self.call_id, len(text), len(cut))
        return dataclasses.replace(prompt, text=cut)

    async def _caller_alive(self) -> bool:
        """Probe after a ``result=-1`` that may not be a hangup (see the module docstring)."""
        if self._connection.hung_up:
            return False
        try:
            reply = await self._send(agi.channel_status, caller_facing=False)
        except CallerHangup:
            return False
        return not self._connection.hung_up and reply.result != -1

    def _recording_path(self, name: str) -> str:
        """``<recordings_dir>/<call id>-<name>``, with ``-2``, ``-3``... when a call records a name again."""
        base = _UNSAFE_FILE_CHARS.sub("_", f"{self.call_id or 'call'}-{name}")
        if self._recorded is None:
            self._recorded = {}
        count = self._recorded[base] = self._recorded.get(base, 0) + 1
        return os.path.join(self._recordings_dir, base if count == 1 else f"{base}-{count}")



def _unexpected(reply: Response, command: str) -> ChannelFailure:
    raw = reply.raw if len(reply.raw) <= 80 else reply.raw[:80] + "..."
    return ChannelFailure(f"AGI protocol fault (Asterisk's): unexpected reply {raw!r} to {command}")


def _key_of(reply: Response, command: str) -> tuple[str | None, bool]:
    """STREAM FILE, WAIT FOR DIGIT and RECORD FILE answer a key's ASCII code, 0 for none, -1 on failure.

    Returns (key or None, whether it was -1); anything else is Asterisk's fault.
    """
    result = reply.result
    if result == 0:
        return None, False
    if result == -1:
        return None, True
    if result is not None and 32 < result < 127:
        return chr(result), False
    raise _unexpected(reply, command)


def _option_argument(value: str, what: str) -> str:
    """A sound or file AutoCall made, as an application's option argument: nothing in it may end the
    argument early (the folders come from the configuration, never from a call)."""
    if any(char in value for char in ",()|&:") or any(not char.isprintable() for char in value):
        raise ChannelFailure(f"the {what} path {value!r} holds a character Dial cannot take in an option "
                             "(, ( ) | & :); choose sounds_dir and recordings_dir without them")
    return value


def _answered_index(destinations: tuple[str, ...], peer_number: str) -> int | None:
    """Which destination answered: Dial's ``DIALEDPEERNUMBER`` is the answering one's text after its
    technology (``101`` for ``PJSIP/101``); None when it matches none of them."""
    for index, destination in enumerate(destinations):
        if peer_number and destination.partition("/")[2] == peer_number:
            return index
    return None


def _seconds(duration_ms: int) -> str:
    """Milliseconds as the seconds Wait() takes: ``2000`` -> ``2``, ``500`` -> ``0.5``."""
    whole, rest = divmod(duration_ms, 1000)
    return str(whole) if not rest else f"{whole}.{rest:03d}".rstrip("0")
