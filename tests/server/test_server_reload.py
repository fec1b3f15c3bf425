"""Hot reload: a good edit is picked up by the next call, a bad edit is logged and the last good version keeps
serving, and a call in progress finishes on the version it started with. Compiles run on the registry's
real worker thread here (the other tests compile on the reactor)."""

from __future__ import annotations

import logging
import os
import threading

from autocall.agi.registry import ScriptBroken, ScriptNotFound, ScriptRegistry
from tests.fakes.fake_asterisk import FakeAsterisk
from tests.server.helpers import HeldAsterisk, sync_compile, write

VERSION = """\
dialogue versioned
start main

state main:
    answer
    gather pin digits 1 prompt "Press a key." timeout 2s
    result "{label}"
"""


def edit(path, text: str) -> None:
    """Rewrite a script and move its mtime on, as an editor saving it a moment later would."""
    before = os.stat(path).st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def version(label: str) -> str:
    return VERSION.replace("{label}", label)


def test_a_good_edit_is_picked_up_by_the_next_call(serve, scripts):
    path = write(scripts, "versioned.dlg", version("one"))
    running = serve(scripts, threaded=True)
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="v1"))
    edit(path, version("two"))
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="v2"))
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="v3"))
    assert [r["result"] for r in running.records()] == ["one", "two", "two"]
    assert running.server.registry.compiles == 2          # once per version, not once per call


def test_a_bad_edit_keeps_the_last_good_version_and_logs_why(serve, scripts, caplog):
    path = write(scripts, "versioned.dlg", version("good"))
    running = serve(scripts, threaded=True)
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="b1"))
    caplog.set_level(logging.INFO, logger="autocall")
    edit(path, version("bad").replace("state main:", "state main:\n    goto nowhere"))
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="b2"))
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="b3"))
    assert [r["result"] for r in running.records()] == ["good", "good", "good"]
    errors = [r for r in caplog.records if "does not compile" in r.getMessage()]
    assert len(errors) == 1                                 # logged once per bad version
    assert "last good version keeps serving" in errors[0].getMessage()
    assert "unknown state 'nowhere'" in errors[0].fields["diagnostics"]
    assert "versioned.dlg:6:" in errors[0].fields["diagnostics"]
    edit(path, version("fixed"))
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="b4"))
    assert running.last()["result"] == "fixed"
    assert any(r.getMessage() == "script reloaded" for r in caplog.records)


def test_a_call_in_progress_finishes_on_the_version_it_started_with(serve, scripts):
    path = write(scripts, "versioned.dlg", version("old"))
    running = serve(scripts, threaded=True)
    held = running.start(HeldAsterisk(FakeAsterisk("versioned", keys="1", uniqueid="f1"), hold_at="STREAM FILE"))
    running.live.run(held.reached)
    edit(path, version("new"))
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="f2"))
    held.release()
    running.live.run(held.finished)
    running.live.settle(running.server.factory)
    assert {r["call_id"]: r["result"] for r in running.records()} == {"f1": "old", "f2": "new"}


def test_compiles_happen_off_the_reactor_thread_and_are_shared(live_reactor, scripts):
    path = str(write(scripts, "versioned.dlg", version("x")))
    threads = []

    class Spy:
        def compile_file(self, source):
            threads.append(threading.current_thread())
            from autocall.dsl.compiler import Compiler
            return Compiler().compile_file(source)

    registry = ScriptRegistry(live_reactor.reactor, compiler_factory=Spy)
    try:
        waiting = [registry.load(path) for _ in range(5)]
        programs = [live_reactor.run(d) for d in waiting]
        assert len({id(p) for p in programs}) == 1 and len(threads) == 1
        assert threads[0] is not threading.current_thread()
        assert registry.current(path) is programs[0]      # up to date: no Deferred, no thread
    finally:
        registry.stop()


def test_a_deleted_script_is_unknown_and_a_directory_is_not_a_script(live_reactor, scripts, compiler):
    path = write(scripts, "gone.dlg", version("x"))
    (scripts / "folder.dlg").mkdir()
    registry = ScriptRegistry(live_reactor.reactor, compiler_factory=lambda: compiler, run_in_thread=sync_compile)
    live_reactor.run(registry.load(str(path)))
    path.unlink()
    for name in ("gone.dlg", "folder.dlg"):
        try:
            registry.current(str(scripts / name))
        except ScriptNotFound:
            pass
        else:
            raise AssertionError(f"{name} should be unknown")
    write(scripts, "never.dlg", "dialogue never\n")
    failure = live_reactor.run(registry.load(str(scripts / "never.dlg")).addErrback(lambda f: f.value))
    assert isinstance(failure, ScriptBroken)


INCLUDING = """\
dialogue versioned
include "shared/closing.dlg"
start main

state main:
    answer
    gather pin digits 1 prompt "Press a key." timeout 2s
    goto closing
"""
CLOSING = 'state closing:\n    result "{label}"\n'


def test_an_edit_of_an_included_file_reloads_the_script_that_includes_it(serve, scripts):
    write(scripts, "versioned.dlg", INCLUDING)
    (scripts / "shared").mkdir()
    shared = write(scripts / "shared", "closing.dlg", CLOSING.replace("{label}", "one"))
    running = serve(scripts, threaded=True)
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="i1"))
    edit(shared, CLOSING.replace("{label}", "two"))
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="i2"))
    edit(shared, CLOSING.replace("{label}", "three").replace("result", "goto nowhere\n    result"))
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="i3"))      # a bad shared file: last good serves
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="i4"))
    assert [r["result"] for r in running.records()] == ["one", "two", "two", "two"]
    assert running.server.registry.compiles == 3


def test_a_missing_included_file_is_watched_until_it_appears(serve, scripts):
    write(scripts, "versioned.dlg", INCLUDING)
    running = serve(scripts, threaded=True)
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="m1"))       # cannot compile: the call fails
    (scripts / "shared").mkdir()
    write(scripts / "shared", "closing.dlg", CLOSING.replace("{label}", "now"))
    running.call(FakeAsterisk("versioned", keys="1", uniqueid="m2"))
    records = {r["call_id"]: r for r in running.records()}
    assert records["m1"]["ended_by"] == "error" and "not found" in records["m1"]["error"]
    assert records["m2"]["result"] == "now"
