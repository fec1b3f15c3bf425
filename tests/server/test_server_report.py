"""``autocall report --json`` over calls served by the FastAGI server to the fake Asterisk, over TCP: the
records the server writes give exact counts for a known mix of keys."""

from __future__ import annotations

from tests.fakes.fake_asterisk import FakeAsterisk
from tests.report.report_helpers import LINES, report_json
from tests.server.helpers import write

# (keys, what Dial leaves in DIALSTATUS), the same mix as the simulated calls of tests/report.
MIX = ([("1", "NOANSWER")] * 3 + [("1", "ANSWER")] + [("2 1234", "NOANSWER")] * 2 + [("2 9999", "NOANSWER")]
       + [("3 5550#", "NOANSWER")] * 2 + [("3 123456", "NOANSWER")] + [("9 w", "NOANSWER"), ("h", "NOANSWER")])


def test_report_of_calls_served_through_fastagi(serve, scripts, monkeypatch, capsys):
    write(scripts, "lines.dlg", LINES)
    running = serve(scripts)
    for number, (keys, dial_status) in enumerate(MIX):
        running.call(FakeAsterisk("lines", keys=keys, dial_status=dial_status, uniqueid=f"srv.{number}",
                                  callerid=f"555010{number % 10}"))
    assert len(running.records()) == len(MIX)
    monkeypatch.setenv("AUTOCALL_DATABASE", running.database)
    report = report_json(capsys, "--since", "1d")
    assert report["calls"] == 12
    assert report["ended_by"] == {"hangup": 11, "caller_hangup": 1, "error": 0}
    assert report["results"] == {"sales": 4, "callback": 3, "ok": 2, "(none)": 2, "bad": 1}
    assert report["transfers"]["by_destination"] == {"PJSIP/100": {"ANSWER": 1, "NOANSWER": 3}}
    assert report["containment"]["contained"] == 11
    assert {name: entry["exits"] for name, entry in report["states"].items()} == {
        "main": {"sales": 4, "account": 3, "callback": 3, "(hangup)": 1, "bye": 1},
        "sales": {"bye": 3, "(end)": 1}, "account": {"bye": 3}, "callback": {"bye": 3}, "bye": {"(end)": 10}}
    inputs = {(item["state"], item["name"]): item for item in report["inputs"]}
    menu = inputs[("main", None)]
    assert (menu["keys"], menu["invalid"], menu["timeout"], menu["failure"]) == ({"1": 4, "2": 3, "3": 3}, 1, 1, 1)
    assert (inputs[("account", "pin")]["keys"], inputs[("account", "pin")]["outcomes"]) == (None, {"complete": 3})
    assert inputs[("callback", "number")]["keys"] == {"5550": 2, "123456": 1}
    assert sum(sum(row) for row in report["by_hour"].values()) == 12
