"""Ring groups, announcements, recorded conversations and queues as AGI commands (against the fake Asterisk)."""

from __future__ import annotations

import pytest

from autocall.agi.channel import _answered_index
from autocall.sim.runner import parse_settings
from tests.fakes.agi_fixtures import run_on_agi

HEADER = "dialogue t\nstart main\n"
RECORDINGS = "/var/spool/autocall/recordings"
UNIQUEID = "1795685563.1"        # the fake's agi_uniqueid: the call id in recording names


@pytest.fixture
def agi_call(compile_text):
    def run(body: str, **fake_options):
        result = compile_text(HEADER + body)
        assert result.ok, result.render()
        transcripts: list = []
        params = fake_options.pop("params", {})
        record = run_on_agi(result.program, settings=parse_settings(result.program, params),
                            transcripts=transcripts, **fake_options)
        return record, transcripts[0]
    return run


def apps(transcript, name: str) -> list[str]:
    prefix = f"EXEC {name} "
    return [line[len(prefix):] for line in transcript.commands() if line.startswith(prefix)]


def test_ring_all_is_one_dial_with_ampersands_and_the_timeout(agi_call):
    record, transcript = agi_call('state main:\n    transfer "PJSIP/101", "PJSIP/102", "Local/103@staff" '
                                  'timeout 20s\n')
    assert apps(transcript, "Dial") == ['PJSIP/101&PJSIP/102&Local/103@staff,20']
    assert len(record.transfers) == 3


def test_ring_in_order_is_one_dial_per_destination_each_with_its_timeout(agi_call):
    record, transcript = agi_call('state main:\n    transfer "PJSIP/101", "PJSIP/102", "PJSIP/103" ring in order '
                                  'timeout 15s\n    result dialstatus\n', dial_status=["BUSY", "NOANSWER", "ANSWER"])
    assert apps(transcript, "Dial") == ['PJSIP/101,15', 'PJSIP/102,15', 'PJSIP/103,15']
    assert [(t["destination"], t["dialstatus"]) for t in record.transfers] == [
        ("PJSIP/101", "BUSY"), ("PJSIP/102", "NOANSWER"), ("PJSIP/103", "ANSWER")]
    assert record.result is None and record.ended_by == "hangup"


def test_the_answering_destination_is_read_from_dialedpeernumber():
    assert _answered_index(("PJSIP/101", "PJSIP/102"), "102") == 1
    assert _answered_index(("PJSIP/101", "SIP/trunk/+3906"), "trunk/+3906") == 1
    assert _answered_index(("PJSIP/101",), "") is None and _answered_index(("PJSIP/101",), "999") is None


def test_a_refused_value_sends_no_dial_at_all(agi_call):
    record, transcript = agi_call('param ext\nstate main:\n    transfer "PJSIP/100", "PJSIP/" + ext\n',
                                  params={"ext": "101&PJSIP/666"})
    assert apps(transcript, "Dial") == [] and transcript.dialled == []
    assert {t["dialstatus"] for t in record.transfers} == {"INVALIDARGS"}
    assert "'&'" in record.log[0]["message"]


def test_announce_is_dials_a_option_with_ringing_for_the_caller(agi_call):
    record, transcript = agi_call('state main:\n    transfer "PJSIP/101", "PJSIP/102" announce "Call about boilers."'
                                  '\n', dial_status="ANSWER")
    assert apps(transcript, "Dial") == ['PJSIP/101&PJSIP/102,30,A(tts/call-about-boilers)r']
    assert transcript.announced == ["tts/call-about-boilers"]
    assert transcript.played == []          # the caller hears ringing, not the announcement


def test_record_starts_mixmonitor_before_dial_and_stops_it_after(agi_call):
    record, transcript = agi_call('state main:\n    transfer "PJSIP/101" record\n', dial_status="ANSWER")
    file = f"{RECORDINGS}/{UNIQUEID}-transfer-1.wav"
    execs = [line for line in transcript.commands() if line.startswith("EXEC")]
    assert execs == [f"EXEC MixMonitor {file},ab", "EXEC Dial PJSIP/101,30", "EXEC StopMixMonitor"]
    assert transcript.monitored == [file] and record.recordings == [file]


def test_recording_survives_the_caller_hanging_up_first(agi_call):
    record, transcript = agi_call('state main:\n    transfer "PJSIP/101" record\n', dial_status="ANSWER",
                                  caller_ends_bridge=True)
    file = f"{RECORDINGS}/{UNIQUEID}-transfer-1.wav"
    assert transcript.monitored == [file] and record.recordings == [file]
    assert [t["dialstatus"] for t in record.transfers] == ["ANSWER"]


def test_an_unanswered_recorded_transfer_writes_and_lists_nothing(agi_call):
    record, transcript = agi_call('state main:\n    transfer "PJSIP/101" record\n    transfer "PJSIP/102" record\n',
                                  dial_status=["NOANSWER", "ANSWER"])
    assert transcript.monitored == [f"{RECORDINGS}/{UNIQUEID}-transfer-2.wav"]
    assert record.recordings == [f"{RECORDINGS}/{UNIQUEID}-transfer-2.wav"]


def test_queue_sends_name_announce_and_timeout_and_reads_queuestatus(agi_call):
    record, transcript = agi_call('state main:\n    queue "support" timeout 5m announce "From the website."\n'
                                  '    result queuestatus\n', queue_status="LEAVEEMPTY")
    assert apps(transcript, "Queue") == ['support,,,tts/from-the-website,300']
    assert record.result == "LEAVEEMPTY"


def test_queue_answered_is_told_by_memberinterface_and_ends_the_call(agi_call):
    record, transcript = agi_call('state main:\n    queue "support" announce "Hi"\n    say "never"\n',
                                  queue_status="ANSWER", caller_ends_bridge=True)
    assert apps(transcript, "Queue") == ['support,,,tts/hi']
    assert transcript.announced == ["tts/hi"]
    assert record.ended_by == "hangup" and record.prompts == []
    assert record.transfers == [{"destination": "queue:support", "dialstatus": "ANSWER"}]


def test_caller_hanging_up_in_the_queue_is_a_caller_hangup(agi_call):
    record, _transcript = agi_call('state main:\n    queue "support"\n    say "never"\n', keys="h")
    assert record.ended_by == "caller_hangup"


def test_a_sound_or_recording_folder_dial_cannot_take_is_a_clear_error():
    from autocall.agi.channel import _option_argument
    from autocall.engine.channel import ChannelFailure
    assert _option_argument("/var/lib/autocall/sounds/tts/ab12", "announcement") == "/var/lib/autocall/sounds/tts/ab12"
    for bad in ("/srv/a,b/x", "/srv/(x)/y", "/srv/a:b", "/srv/a&b", "/srv/a\nb"):
        with pytest.raises(ChannelFailure, match="choose sounds_dir and recordings_dir without them"):
            _option_argument(bad, "announcement")
