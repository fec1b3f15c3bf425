"""AgiChannel against the fake Asterisk, joined in memory (iosim + task.Clock): every Channel method,
hangups before, during and after each kind of command, the missing-sound rule, protocol faults
with whose fault they are, and parity with the simulator's scripted caller."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task

from autocall.agi import protocol as agi
from autocall.engine.channel import ALL_KEYS, CallerHangup, DialOutcome, RecordOutcome, TtsPrompt
from autocall.sim.caller import HANGUP, ScriptedCaller
from autocall.sim.channel import SimChannel, SimClock, run_sync
from tests.agi.agi_calls import FULL_CALL, GOLDEN, HELLO, KNOWN, MENU, REC, USAGE_520
from tests.fakes.agi_fixtures import Outcome, call_in_memory, memory_factory, script_driver
from tests.fakes.fake_asterisk import FROM_ASTERISK, FakeAsterisk, Transcript


def run(steps, **fake_options) -> tuple[Outcome, Transcript]:
    outcomes: list[Outcome] = []
    factory = memory_factory(script_driver(steps, outcomes, recordings_dir=REC))
    fake_options.setdefault("known_sounds", KNOWN)
    transcript = call_in_memory(FakeAsterisk(**fake_options), factory)
    assert factory.connections == set()
    [outcome] = outcomes
    return outcome, transcript


def conversation(transcript: Transcript) -> list[str]:
    return [f"{d} {line}" for d, line in transcript.after_environment()]


# --- a whole call -----------------------------------------------------------------

def test_a_whole_call_matches_the_golden_transcript():
    # "1" and "#" come while prompts that take no key speak: kept (type-ahead), and the prompts resume.
    outcome, transcript = run(FULL_CALL, keys="1 0 w #")
    assert outcome.ended_by == "hangup"
    assert outcome.returns == [None, None, "1", "0", None, None, RecordOutcome(f"{REC}/1795685563.1-message.wav"),
                               DialOutcome("NOANSWER"), None, None, None]
    assert transcript.variables["RESULT"] == "voicemail left"
    assert transcript.dialled == ["PJSIP/101,25"]
    assert transcript.closed_by == "server"
    golden = GOLDEN / "full-call.log"
    assert transcript.render() == golden.read_text()


# --- each method --------------------------------------------------------------------

@pytest.mark.parametrize(("keys", "expected"), [("", None), ("7", "7"), ("w 7", None), ("*", "*")])
def test_wait_for_digit(keys, expected):
    outcome, _ = run([lambda ch: ch.wait_for_digit(1500)], keys=keys)
    assert outcome.returns == [expected]


def test_a_key_outside_the_interrupt_keys_does_not_stop_the_prompt_and_stays_buffered():
    outcome, _ = run([lambda ch: ch.play(MENU, "12"), lambda ch: ch.wait_for_digit(1000)], keys="9")
    assert outcome.returns == [None, "9"]


@pytest.mark.parametrize(("ms", "sent"), [(2000, "EXEC Wait 2"), (1250, "EXEC Wait 1.25"), (500, "EXEC Wait 0.5"),
                                          (1, "EXEC Wait 0.001"), (0, None)])
def test_pause_is_exec_wait_in_seconds(ms, sent):
    _, transcript = run([lambda ch: ch.pause(ms)])
    assert transcript.commands() == ([sent] if sent else [])


def test_record_names_files_per_call_and_counts_repeats():
    twice = [lambda ch: ch.record("msg", 0, 0, False, None)] * 2
    steps = [*twice, lambda ch: ch.record("a b/../c", 1000, 0, False, None)]
    outcome, transcript = run(steps, uniqueid="1795.7")
    assert [r.file for r in outcome.returns] == [f"{REC}/1795.7-msg.wav", f"{REC}/1795.7-msg-2.wav",
                                                f"{REC}/1795.7-a_b_.._c.wav"]
    assert transcript.commands()[0] == f'RECORD FILE {REC}/1795.7-msg wav "" -1'
    assert transcript.recordings == [r.file for r in outcome.returns]


def test_record_silence_rounds_up_to_whole_seconds():
    _, transcript = run([lambda ch: ch.record("m", 30_000, 2_500, True, "*")])
    # the beep is AutoCall's own, played first: RECORD FILE's BEEP needs Asterisk's core sounds
    assert transcript.commands() == ['STREAM FILE autocall-beep ""',
                                     f'RECORD FILE {REC}/1795685563.1-m wav "*" 30000 s=3']


@pytest.mark.parametrize(("status", "expected"), [("NOANSWER", "NOANSWER"), ("BUSY", "BUSY"),
                                                  ("CHANUNAVAIL", "CHANUNAVAIL"), ("ANSWER", "ANSWER")])
def test_transfer_returns_the_dial_status(status, expected):
    outcome, transcript = run([lambda ch: ch.transfer(("PJSIP/200",), None, None)], dial_status=status)
    assert [returned.status for returned in outcome.returns] == [expected]
    assert transcript.commands() == ["EXEC Dial PJSIP/200", "GET VARIABLE DIALSTATUS"]


@pytest.mark.parametrize("destination", ["PJSIP/1,,tT", "", " PJSIP/1"])
def test_transfer_refuses_a_destination_that_would_smuggle_dial_options(destination):
    outcome, transcript = run([lambda ch: ch.transfer((destination,), 1000, None)])
    assert outcome.ended_by == "error" and transcript.commands() == []


def test_transfer_timeout_is_whole_seconds_at_least_one():
    _, transcript = run([lambda ch: ch.transfer(("PJSIP/1",), 200, None)])
    assert transcript.commands()[0] == "EXEC Dial PJSIP/1,1"


# --- the missing-sound rule ---------------------------------------------------------

def test_a_missing_sound_is_an_error_of_the_script_not_a_hangup(caplog):
    steps = [lambda ch: ch.play(TtsPrompt("Not rendered"), "1"), lambda ch: ch.wait_for_digit(1000)]
    outcome, transcript = run(steps, keys="5")
    assert outcome.ended_by == "hangup" and outcome.returns == [None, "5"]
    assert conversation(transcript)[:4] == [
        '>> STREAM FILE tts/not-rendered "1"', "<< 200 result=-1 endpos=0",
        ">> CHANNEL STATUS", "<< 200 result=6"]
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "'tts/not-rendered' is missing on the PBX" in record.getMessage()
    assert "1795685563.1" in record.getMessage()


def test_a_hangup_at_a_missing_sound_is_still_a_hangup():
    outcome, transcript = run([lambda ch: ch.play(TtsPrompt("Not rendered"))], keys="h")
    assert outcome.ended_by == "caller_hangup"
    assert conversation(transcript) == [
        '>> STREAM FILE tts/not-rendered "0123456789*#"', "<< 200 result=-1 endpos=0",
        ">> CHANNEL STATUS", "<< HANGUP", "<< 511 Command Not Permitted on a dead channel or intercept routine"]


def test_hangup_mid_prompt_is_confirmed_like_ami_hangupstream():
    outcome, transcript = run([lambda ch: ch.play(HELLO), lambda ch: ch.play(HELLO)], keys="h")
    assert outcome.ended_by == "caller_hangup" and outcome.returns == []
    assert conversation(transcript) == [
        '>> STREAM FILE tts/hello "0123456789*#"', "<< 200 result=-1 endpos=4000",
        ">> CHANNEL STATUS", "<< HANGUP", "<< 511 Command Not Permitted on a dead channel or intercept routine"]


def test_hangup_line_sent_at_once_needs_no_probe():
    outcome, transcript = run([lambda ch: ch.play(HELLO)], keys="h", hangup_notice="immediate")
    assert outcome.ended_by == "caller_hangup"
    assert transcript.commands() == ['STREAM FILE tts/hello "0123456789*#"']


def test_a_probe_cut_short_by_agiexitonhangup_is_a_hangup():
    outcome, transcript = run([lambda ch: ch.play(HELLO)], keys="h", exit_on_hangup=True)
    assert outcome.ended_by == "caller_hangup" and transcript.closed_by == "asterisk"
    assert conversation(transcript)[-3:] == [">> CHANNEL STATUS", "<< HANGUP", "<< HANGUP"]


# --- hangups everywhere ---------------------------------------------------------------

EVERY_KIND = {
    "answer": lambda ch: ch.answer(),
    "prompt": lambda ch: ch.play(HELLO),
    "interruptible prompt": lambda ch: ch.play(MENU, ALL_KEYS),
    "missing sound": lambda ch: ch.play(TtsPrompt("Not rendered"), "1"),
    "wait for digit": lambda ch: ch.wait_for_digit(5000),
    "record": lambda ch: ch.record("m", 5000, 0, True, "#"),
    "transfer": lambda ch: ch.transfer(("PJSIP/1",), 20_000, None),
    "transfer with caller id": lambda ch: ch.transfer(("PJSIP/1",), None, "5551234"),
    "pause": lambda ch: ch.pause(2000),
}


@pytest.mark.parametrize("notice", ["before_next_reply", "immediate"])
@pytest.mark.parametrize("exit_on_hangup", [False, True], ids=["socket-stays", "AGIEXITONHANGUP"])
@pytest.mark.parametrize("kind", EVERY_KIND)
@pytest.mark.parametrize("when", ["before", "during", "after"])
def test_hangup_before_during_and_after_every_kind_of_command(kind, when, exit_on_hangup, notice):
    step = EVERY_KIND[kind]
    wait = lambda ch: ch.wait_for_digit(1000)  # noqa: E731
    if when == "before":       # the HANGUP line arrives before the command is sent
        steps, options = [lambda ch: ch.answer(), step], {"hangup_after_reply": 1}
    elif when == "during":     # the caller hangs up while the command runs
        steps, options = [step], {"keys": "h"}
    else:                      # the command completes; the caller hangs up at a later input
        steps, options = [step, wait, wait], {"keys": "5 h"}
    outcome, transcript = run(steps, exit_on_hangup=exit_on_hangup, hangup_notice=notice, **options)
    assert outcome.ended_by == "caller_hangup", (outcome, conversation(transcript))
    closed_by_asterisk = exit_on_hangup and (FROM_ASTERISK, "HANGUP") in transcript.lines
    assert transcript.closed_by == ("asterisk" if closed_by_asterisk else "server")
    # after the hangup the server sends at most one probe, then closes
    commands = transcript.commands()
    assert commands.count("CHANNEL STATUS") <= 1
    if when == "before":
        assert commands == ["ANSWER"]


def test_hangup_line_while_the_server_thinks_ends_the_call_without_another_command():
    """starpy took this line for the next reply; here it only sets the flag."""
    clock = task.Clock()
    outcomes: list[Outcome] = []
    steps = [lambda ch: ch.answer(),
             lambda ch: task.deferLater(clock, 0, lambda: "thought"),
             lambda ch: ch.play(HELLO, "1")]
    factory = memory_factory(script_driver(steps, outcomes))
    factory.clock = clock
    transcript = call_in_memory(FakeAsterisk(hangup_after_reply=1, known_sounds=KNOWN), factory)
    assert outcomes[0].ended_by == "caller_hangup" and outcomes[0].returns == [None, "thought"]
    assert conversation(transcript) == [">> ANSWER", "<< 200 result=0", "<< HANGUP"]


def test_set_variable_still_works_on_a_dead_channel_then_the_next_prompt_hangs_up():
    """#7776: SET VARIABLE answered 200 result=1 after the HANGUP line."""
    steps = [lambda ch: ch.answer(), lambda ch: ch.set_variable("X", "1"), lambda ch: ch.play(HELLO)]
    outcome, transcript = run(steps, hangup_after_reply=1)
    assert outcome.ended_by == "caller_hangup" and outcome.returns == [None, None]
    assert transcript.variables["X"] == "1"
    assert transcript.commands() == ["ANSWER", "SET VARIABLE X 1"]


def test_our_hangup_then_asterisks_hangup_line():
    outcome, transcript = run([lambda ch: ch.hangup()])
    assert outcome.ended_by == "hangup"
    assert conversation(transcript) == [">> HANGUP", "<< 200 result=1", "<< HANGUP"]


def test_our_hangup_after_the_caller_left_is_a_caller_hangup():
    outcome, transcript = run([lambda ch: ch.answer(), lambda ch: ch.hangup()], hangup_after_reply=1)
    assert outcome.ended_by == "caller_hangup" and transcript.commands() == ["ANSWER"]


def test_transfer_answered_then_the_caller_leaves_is_still_answer():
    outcome, transcript = run([lambda ch: ch.transfer(("PJSIP/1",), None, None)], dial_status="ANSWER",
                              hangup_notice="immediate", hangup_after_reply=1)
    assert [returned.status for returned in outcome.returns] == ["ANSWER"]


def test_hangup_during_transfer_reads_dialstatus_then_hangs_up():
    outcome, transcript = run([lambda ch: ch.transfer(("PJSIP/1",), 5000, None)], keys="h")
    assert outcome.ended_by == "caller_hangup"
    assert conversation(transcript) == [">> EXEC Dial PJSIP/1,5", "<< 200 result=-1", ">> GET VARIABLE DIALSTATUS",
                                        "<< HANGUP", "<< 200 result=1 (CANCEL)"]


def test_hangup_mid_recording_keeps_the_message():
    """res_agi.c answers '200 result=-1 (hangup) endpos=N': the file so far is a message left."""
    outcome, transcript = run([lambda ch: ch.record("m", 5000, 0, False, "#")], keys="h")
    assert outcome.ended_by == "caller_hangup"
    assert outcome.returns == [RecordOutcome(f"{REC}/1795685563.1-m.wav", None, hung_up=True)]
    assert transcript.commands() == [f'RECORD FILE {REC}/1795685563.1-m wav "#" 5000']


def test_a_recording_that_never_began_because_the_caller_left_is_a_hangup():
    outcome, transcript = run([lambda ch: ch.record("m", 5000, 0, True, "#")],
                              replies={1: ["200 result=-1 (randomerror) endpos=0", "HANGUP"]})
    assert outcome.ended_by == "caller_hangup" and outcome.returns == []


def test_a_failed_recording_on_a_live_channel_is_logged_not_a_hangup_and_no_file(caplog):
    outcome, transcript = run([lambda ch: ch.record("m", 5000, 0, False, "#")],
                              replies={1: ["200 result=-1 (randomerror) endpos=0"]})
    assert outcome.ended_by == "hangup" and outcome.returns[0] == RecordOutcome("")
    assert "recording" in caplog.text and transcript.commands()[-1] == "CHANNEL STATUS"


# --- protocol faults say whose ---------------------------------------------------------

@pytest.mark.parametrize(("reply", "whose"), [
    (USAGE_520, "(ours)"),
    (["510 Invalid or unknown command"], "(ours)"),
    (["200 result=0 (unclosed"], "(Asterisk's)"),
    (["what?"], "(Asterisk's)"),
    (["600 something else"], "(Asterisk's)"),
    (["200 result=zz"], "(Asterisk's)"),
])
def test_protocol_faults_are_channel_failures_naming_whose(reply, whose):
    outcome, transcript = run([lambda ch: ch.answer(), lambda ch: ch.wait_for_digit(1000)], replies={2: reply})
    assert outcome.ended_by == "error" and whose in outcome.error, outcome.error
    assert "protocol fault" in outcome.error


def test_520_mid_call_does_not_desynchronise_later_replies():
    outcomes: list = []

    async def on_call(connection):
        first = await connection.send_command(agi.wait_for_digit(1000))
        second = await connection.send_command(agi.wait_for_digit(1000))
        third = await connection.send_command(agi.noop())
        outcomes.append((first, second, third))

    factory = memory_factory(on_call)
    call_in_memory(FakeAsterisk(keys="4 5", replies={1: USAGE_520}), factory)
    first, second, third = outcomes[0]
    assert first.lines == ("Waits up to some time.",)
    assert (second.result, third.result) == (ord("4"), 0)


def test_unknown_application_is_a_failure():
    outcome, _ = run([lambda ch: ch.pause(100)], replies={1: ["200 result=-2"]})
    assert outcome.ended_by == "error" and "no Wait application" in outcome.error


def test_recordings_folder_asterisk_cannot_write_is_a_failure():
    outcome, _ = run([lambda ch: ch.record("m", 100, 0, False, None)], replies={1: ["200 result=-1 (writefile)"]})
    assert outcome.ended_by == "error" and "recordings_dir" in outcome.error


def test_bad_interrupt_keys_are_our_fault():
    outcome, transcript = run([lambda ch: ch.play(HELLO, "1x")])
    assert outcome.ended_by == "error" and "(ours)" in outcome.error and transcript.commands() == []


# --- parity with the simulator's scripted caller -------------------------------------------

OPS = st.lists(st.one_of(
    st.just(("answer",)),
    st.tuples(st.just("play"), st.sampled_from(["", "12", ALL_KEYS, "#"])),
    st.just(("wait",)),
    st.just(("pause",)),
    st.tuples(st.just("record"), st.sampled_from([None, "#", "*"])),
    st.just(("transfer",)),
), min_size=1, max_size=8)


def reference(ops, keys: str) -> tuple[list, str]:
    """What the simulator does with the same caller: its channel (type-ahead included), ``h`` as a hangup."""
    channel, returns = SimChannel(ScriptedCaller(keys), SimClock(0.0)), []
    for step in as_steps(ops):
        try:
            got = run_sync(step(channel))
        except CallerHangup:
            return returns, "caller_hangup"
        returns.append(_normal(got))
        if isinstance(got, RecordOutcome) and got.hung_up:   # the engine keeps the message, then ends
            return returns, "caller_hangup"
    return returns, "hangup"


def as_steps(ops):
    table = {
        "answer": lambda op: lambda ch: ch.answer(),
        "play": lambda op: lambda ch: ch.play(HELLO, op[1]),
        "wait": lambda op: lambda ch: ch.wait_for_digit(1000),
        "pause": lambda op: lambda ch: ch.pause(500),
        "record": lambda op: lambda ch: ch.record("m", 1000, 0, False, op[1]),
        "transfer": lambda op: lambda ch: ch.transfer(("PJSIP/1",), 1000, None),
    }
    return [table[op[0]](op) for op in ops]


def _normal(returned):
    if isinstance(returned, DialOutcome):
        return returned.status
    return (returned.key, returned.hung_up) if isinstance(returned, RecordOutcome) else returned


@settings(max_examples=150, deadline=None)
@given(ops=OPS, keys=st.text(alphabet="0123456789*#wh ", max_size=10))
def test_the_agi_channel_gives_the_same_call_as_the_simulator(ops, keys):
    outcome, _ = run(as_steps(ops), keys=keys)
    assert ([_normal(r) for r in outcome.returns], outcome.ended_by) == reference(ops, keys)
