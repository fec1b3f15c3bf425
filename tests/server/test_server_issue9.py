"""Issue 9 on the FastAGI server, over real TCP with the fake Asterisk: what a real Asterisk showed us.

A hang-up while bridged keeps the transfer in the record; a failed ``RECORD FILE``
is no recording; keys pressed while a prompt speaks are kept for the next input
(type-ahead), as in the simulator; positional AGI arguments fill no param; a
peer outside ``allowed_peers`` is dropped.
"""

from __future__ import annotations

import logging

import pytest
from twisted.internet import defer

from tests.fakes.agi_fixtures import FakeSounds
from tests.fakes.fake_asterisk import FakeAsterisk
from tests.server.helpers import write

TRANSFER = """\
dialogue bridge
start main

state main:
    transfer "PJSIP/100" timeout 20s
    result "not bridged"
"""


@pytest.mark.parametrize("exit_on_hangup", [False, True], ids=["socket-stays-open", "AGIEXITONHANGUP"])
def test_a_caller_hanging_up_while_bridged_keeps_the_transfer(serve, scripts, exit_on_hangup):
    """Dial answers -1, Asterisk sends HANGUP; the transfer stays in the record. With the socket open the
    server still reads DIALSTATUS (ANSWER); with AGIEXITONHANGUP=yes Asterisk closes it first, the
    status is lost, and the transfer is listed without one (the docs' dialplan no longer sets it)."""
    write(scripts, "bridge.dlg", TRANSFER)
    running = serve(scripts)
    running.call(FakeAsterisk("bridge", keys="h", dial_status="ANSWER", bridge_hangup=True,
                              hangup_notice="immediate", exit_on_hangup=exit_on_hangup))
    record = running.last()
    status = "" if exit_on_hangup else "ANSWER"
    assert record["transfers"] == [{"destination": "PJSIP/100", "dialstatus": status}]
    assert record["error"] is None and record["result"] is None


ACCOUNT = """\
dialogue support
param company
param account_pin = ""
start main

state main:
    result "{company}|{account_pin}"
"""


def test_a_positional_argument_never_fills_a_param(serve, scripts, caplog):
    """The old docs' dialplan, AGI(agi://host/support?company=Acme,${EXTEN}): the caller dials 4739 and
    the positional argument used to become account_pin, beating the channel variable from the CRM."""
    write(scripts, "support.dlg", ACCOUNT)
    running = serve(scripts)
    caplog.set_level(logging.INFO, logger="autocall")
    transcript = running.call(FakeAsterisk("support?company=Acme", args=["4739"],
                                           variables={"account_pin": "from-crm"}, uniqueid="pos1"))
    assert running.last()["result"] == "Acme|from-crm"
    assert "GET VARIABLE account_pin" in transcript.commands()
    assert any("1 positional AGI argument(s) ignored" in r.getMessage() for r in caplog.records)
    running.call(FakeAsterisk("support?company=Acme", args=["account_pin=1111"], uniqueid="pos2"))
    assert running.last()["result"] == "Acme|1111"


def test_a_peer_outside_allowed_peers_is_logged_and_dropped(serve, scripts, caplog):
    write(scripts, "support.dlg", ACCOUNT)
    running = serve(scripts, allowed_peers=("10.0.0.0/8",))
    caplog.set_level(logging.WARNING, logger="autocall")
    transcript = running.live.run(FakeAsterisk("support?company=Acme").call(
        running.live.reactor, running.host, running.port))
    assert transcript.commands() == [] and transcript.closed_by == "server"
    assert any("127.0.0.1" in r.getMessage() and "allowed_peers" in r.getMessage() for r in caplog.records)
    assert running.server.calls_started == 0


def test_the_default_allows_loopback_only(serve, scripts):
    write(scripts, "support.dlg", ACCOUNT)
    running = serve(scripts)
    running.call(FakeAsterisk("support?company=Acme", uniqueid="lo1"))
    assert running.last()["call_id"] == "lo1"
    peers = running.server.factory.allowed_peers
    assert peers.allows("127.0.0.1") and peers.allows("::1") and peers.allows("::ffff:127.0.0.1")
    assert not peers.allows("10.0.0.5") and not peers.allows("192.168.1.1") and not peers.allows("::ffff:10.0.0.5")


VOICEMAIL = """\
dialogue voicemail
start main

state main:
    answer
    record message max 5s beep
    result "message: {message}"
"""


def test_a_failed_record_file_is_no_recording_and_leaves_the_name_empty(serve, scripts):
    """Asterisk without core sounds answers RECORD FILE ... BEEP with (randomerror): nothing recorded."""
    write(scripts, "voicemail.dlg", VOICEMAIL)
    running = serve(scripts)
    transcript = running.call(FakeAsterisk("voicemail", uniqueid="rf1",
                                           replies={4: ["200 result=-1 (randomerror) endpos=0"]}))
    assert transcript.commands()[3].startswith("RECORD FILE")
    record = running.last()
    assert record["recordings"] == [] and record["result"] == "message: "
    assert any("the recording failed" in entry["message"] for entry in record["log"])


def test_record_beep_plays_autocalls_own_beep_not_asterisks(serve, scripts):
    write(scripts, "voicemail.dlg", VOICEMAIL)
    running = serve(scripts)
    transcript = running.call(FakeAsterisk("voicemail", uniqueid="rf2"))
    commands = transcript.commands()
    assert 'STREAM FILE autocall-beep ""' in commands
    [record_file] = [line for line in commands if line.startswith("RECORD FILE")]
    assert "BEEP" not in record_file
    assert running.last()["recordings"] == ["/var/spool/autocall/rf2-message.wav"]


class DiscardingSounds(FakeSounds):
    """FakeSounds that name a secret prompt at random, as PlayableSounds does, and note what is discarded."""

    def __init__(self) -> None:
        super().__init__()
        self.discarded: list[str] = []

    def sound_for(self, prompt):
        if getattr(prompt, "secret", False):
            self.asked.append(prompt)
            return defer.succeed(f"private/{len(self.asked)}")
        return super().sound_for(prompt)

    def discard(self, name: str) -> None:
        self.discarded.append(name)


def test_a_secret_prompt_is_rendered_for_the_call_and_discarded_when_it_ends(serve, scripts):
    write(scripts, "pin.dlg", 'dialogue pin\nstart main\nstate main:\n'
                              '    gather pin digits 4 secret prompt "PIN?"\n'
                              '    say "You typed {pin|digits}."\n'
                              '    say "Goodbye."\n')
    sounds = DiscardingSounds()
    running = serve(scripts, sounds=sounds)
    transcript = running.call(FakeAsterisk("pin", keys="4739", uniqueid="sp1"))
    secret = [p for p in sounds.asked if getattr(p, "secret", False)]
    assert [p.text for p in secret] == ["You typed 4 7 3 9."]
    played = [line for line in transcript.commands() if line.startswith("STREAM FILE private/")]
    assert len(played) == 1 and sounds.discarded == [played[0].split()[2]]
    assert not any("4739" in line or "4-7-3-9" in line for line in transcript.commands())
