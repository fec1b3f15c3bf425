"""Issue 9 on the FastAGI server, over real TCP with the fake Asterisk: what a real Asterisk showed us.

A hang-up while bridged keeps the transfer in the record; a failed ``RECORD FILE``
is no recording; keys pressed while a prompt speaks are kept for the next input
(type-ahead), as in the simulator; positional AGI arguments fill no param; a
peer outside ``allowed_peers`` is dropped.
"""

from __future__ import annotations

import pytest

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
