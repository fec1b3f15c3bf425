"""Originate requests (fields as Asterisk expects them) and outcomes (each Reason code mapped)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ami_helpers import load_transcript, parse_whole, transcripts_or_skip
from autocall.ami.originate import (ChannelTemplate, ChannelTemplateError, OriginateOutcome, OriginateRequest,
                                    OriginateResult, build_originate_request, outcome_for)
from autocall.ami.protocol import AmiConnection, Event, Fields, LocalProtocolError, Response
from autocall.errors import UserError


@pytest.mark.parametrize("response,reason,outcome", [
    ("Success", "4", OriginateOutcome.ANSWERED),
    ("Failure", "5", OriginateOutcome.BUSY),
    ("Failure", "8", OriginateOutcome.CONGESTION),
    ("Failure", "3", OriginateOutcome.NOANSWER),
    ("Failure", "0", OriginateOutcome.FAILED),
    ("Failure", "1", OriginateOutcome.FAILED),
    # undocumented or missing Reasons: Asterisk finished the attempt, so never "unknown"
    ("Failure", "2", OriginateOutcome.FAILED),
    ("Failure", None, OriginateOutcome.FAILED),
    ("Failure", "x", OriginateOutcome.FAILED),
    ("Success", "7", OriginateOutcome.ANSWERED),
    (None, None, OriginateOutcome.FAILED),
])
def test_reason_codes_map_to_outcomes(response, reason, outcome):
    assert outcome_for(response, reason) is outcome


def originate_response(**fields: str) -> Event:
    pairs = [("Event", "OriginateResponse"), ("Privilege", "call,all")] + list(fields.items())
    return Event("OriginateResponse", fields.get("ActionID"), Fields(pairs))


def test_result_of_a_failure_has_no_uniqueid_and_the_channel_as_sent():
    event = originate_response(ActionID="a-1", Response="Failure", Channel="PJSIP/555@trunk", Reason="5",
                               Uniqueid="<unknown>")
    result = OriginateResult.from_event(event, queued=True)
    assert (result.outcome, result.reason, result.uniqueid, result.channel, result.queued, result.detail) == (
        OriginateOutcome.BUSY, 5, None, "PJSIP/555@trunk", True, "busy")
    legacy = OriginateResult.from_event(originate_response(ActionID="a", Response="Failure", Reason="5",
                                                           Uniqueid="<null>"), queued=True)
    assert legacy.uniqueid is None


def test_result_of_an_unknown_reason_says_so():
    result = OriginateResult.from_event(originate_response(ActionID="a", Response="Failure", Reason="42"), True)
    assert result.outcome is OriginateOutcome.FAILED and "42" in result.detail


def test_refused_originate_is_failed_and_not_queued():
    response = Response("a-9", "Error", "Invalid channel", Fields([("Response", "Error")]))
    result = OriginateResult.refused(response)
    assert (result.outcome, result.queued, result.action_id) == (OriginateOutcome.FAILED, False, "a-9")
    assert "Invalid channel" in result.detail


@pytest.mark.parametrize("stem,outcome,uniqueid,channel", [
    ("ami-facts", OriginateOutcome.ANSWERED, "1795685579.2", "Local/s@ivr-00000001;1"),
    ("ami-fail-local", OriginateOutcome.FAILED, None, "Local/nonexistent@nowhere"),
])
def test_results_read_from_the_transcripts(stem, outcome, uniqueid, channel):
    path = next(p for p in transcripts_or_skip() if p.stem == stem)
    event = next(i for i in parse_whole(load_transcript(path).stream)
                 if isinstance(i, Event) and i.name == "OriginateResponse")
    result = OriginateResult.from_event(event, queued=True)
    assert (result.outcome, result.uniqueid, result.channel, result.action_id) == (outcome, uniqueid, channel, "orig-1")


# -- the request ----------------------------------------------------------------------------------------
def test_originate_bytes_equal_the_transcripts_action():
    """The probe's Originate of ami-facts.log, rebuilt with OriginateRequest: the same lines in the same order."""
    path = next(p for p in transcripts_or_skip() if p.stem == "ami-facts")
    sent = load_transcript(path).sent[1]
    request = OriginateRequest(channel="Local/s@ivr", context="caller", exten="silent", priority=1,
                               timeout_ms=30000, caller_id='"Probe" <5550100>',
                               variables=(("IVR_HOST", "127.0.0.1:4580"), ("IVR_SCRIPT", "facts"),
                                          ("CALLER_HOLD", "25")))
    data = AmiConnection().send(request.to_action("orig-1"))
    assert data == ("".join(f"{k}: {v}\r\n" for k, v in sent) + "\r\n").encode()


def test_originate_with_an_application_equals_the_transcripts_action():
    path = next(p for p in transcripts_or_skip() if p.stem == "ami-app")
    sent = load_transcript(path).sent[1]
    request = OriginateRequest(channel="Local/s@ivr", application="SendDTMF", data="W5wwww1234,250",
                               caller_id='"Probe" <5550100>',
                               variables=(("IVR_HOST", "127.0.0.1:4580"), ("IVR_SCRIPT", "probe")))
    assert request.to_action("orig-1").fields.pairs == tuple(sent[2:])


def test_build_request_from_template_tags_the_attempt():
    request = build_originate_request("PJSIP/{number}@trunk", "+15551234", attempt_id=42, script="reminder",
                                      context="autocall-outbound", caller_id="Acme <5551234>",
                                      variables={"company": "Acme, Inc."})
    assert request.channel == "PJSIP/+15551234@trunk"
    assert request.variables == (("AUTOCALL_ATTEMPT", "42"), ("AUTOCALL_SCRIPT", "reminder"),
                                 ("AUTOCALL_NUMBER", "+15551234"), ("company", "Acme, Inc."))
    assert request.variable("autocall_attempt") == "42"
    action = request.to_action("x")
    assert action.fields["Context"] == "autocall-outbound" and action.fields["Exten"] == "s"
    assert "Acme\\, Inc." in action.fields.get_all("Variable")[-1]


def test_build_request_for_an_application():
    request = build_originate_request("PJSIP/{number}@trunk", "100", attempt_id="a1", script="s",
                                      application="AGI", data="agi://127.0.0.1:4573/s")
    fields = request.to_action("x").fields
    assert fields["Application"] == "AGI" and "Context" not in fields and "Exten" not in fields


def test_request_without_destination_is_refused_at_once():
    with pytest.raises(LocalProtocolError):
        build_originate_request("PJSIP/{number}@trunk", "100", attempt_id=1, script="s")


@pytest.mark.parametrize("template", ["PJSIP/trunk", "PJSIP/{num}@trunk", "{number}", "PJSIP/{number}{number}",
                                      "PJSIP/{number@trunk", "PJSIP/{number}@a,b"])
def test_bad_templates_are_user_errors_on_one_line(template):
    with pytest.raises(ChannelTemplateError) as caught:
        ChannelTemplate(template)
    assert isinstance(caught.value, UserError)
    assert "\n" not in str(caught.value) and "PJSIP/{number}@trunk" in str(caught.value)


@pytest.mark.parametrize("number", ["", "555 1234", "100@evil", "1/2", "1&PJSIP/2", "1,2", "1\r\nAction: Hangup"])
def test_numbers_that_would_change_the_dial_string_are_refused(number):
    with pytest.raises(ValueError):
        ChannelTemplate("PJSIP/{number}@trunk").expand(number)


@given(st.from_regex(r"\+?[0-9*#]{1,15}", fullmatch=True))
def test_any_dialable_number_expands_into_the_template(number):
    assert ChannelTemplate("SIP/{number}@gw").expand(number) == f"SIP/{number}@gw"


def test_the_originate_tracker_fires_each_originate_once_by_its_action_id():
    """Refused by Asterisk (nothing placed), answered by its event, unknown at its deadline: once each."""
    from twisted.internet.task import Clock

    from autocall.ami.tracker import OriginateTracker
    clock = Clock()
    tracker = OriginateTracker(clock)
    results = {}
    for action_id in ("a1", "a2", "a3"):
        tracker.track(action_id, 5_000).addCallback(lambda result, key: results.setdefault(key, result), action_id)
    tracker.acknowledged("a1", Response("a1", "Error", "Originate failed", Fields([])))
    tracker.event(Event("OriginateResponse", "a2", Fields([("ActionID", "a2"), ("Response", "Success"),
                                                           ("Reason", "4"), ("Uniqueid", "17.1")])))
    tracker.link_lost()
    clock.advance(5)
    assert results["a1"].not_placed and results["a1"].outcome.value == "failed"
    assert results["a2"].answered and results["a2"].uniqueid == "17.1" and not results["a2"].not_placed
    assert results["a3"].outcome.value == "unknown" and "link was lost" in results["a3"].detail
    assert len(tracker) == 0
