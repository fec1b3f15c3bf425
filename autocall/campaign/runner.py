"""Running a prepared campaign to its end on a PBX: the simulated one on a clock that follows real time,
Asterisk on the Twisted reactor.

The simulated PBX has no I/O, so it needs no reactor: a ``task.Clock`` is
moved forward with the wall clock (``drive_clock``). That keeps ``autocall
demo`` free to use the reactor for other things, and makes Ctrl-C simple: the
first one stops dialling and lets the calls in flight end, a second one quits
at once (the next run settles what was left open).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.task import Clock

from autocall.campaign.pbx_sim import SimPbx
from autocall.campaign.scheduler import CampaignFailed, Observer, Scheduler
from autocall.campaign.setup import PbxAddress, settings_from
from autocall.config import Config
from autocall.engine.ir import Program
from autocall.errors import UserError


def drive_clock(clock: Clock, finished: Callable[[], bool], *, now: Callable[[], float] = time.time,
                sleep: Callable[[float], None] = time.sleep, max_step: float = 0.25) -> None:
    """Advance ``clock`` in step with ``now()`` until ``finished()``, sleeping until each next timer."""
    while not finished():
        calls = clock.getDelayedCalls()
        target = min((call.getTime() for call in calls), default=clock.seconds() + max_step)
        wait = min(target - now(), max_step)
        if wait > 0:
            sleep(wait)
        clock.advance(max(0.0, now() - clock.seconds()))


def run_sim(conn, campaign_id: int, *, program: Program, options: dict, config: Config, name: str,
            observer: Observer | None = None, clock: Clock | None = None,
            drive: Callable[..., None] = drive_clock) -> dict:
    """Run the campaign on the simulated PBX in (scaled) real time; returns the scheduler's summary."""
    if clock is None:
        clock = Clock()
        clock.advance(time.time())
    speed = float(options.get("sim_speed") or 1.0)
    pbx = SimPbx(program, clock, conn, campaign=name, speed=speed, amd=bool(options.get("amd")),
                 caller_id=options.get("caller_id") or "", max_call_duration_ms=config.max_call_duration,
                 recordings_dir=config.recordings_dir)
    scheduler = Scheduler(conn, campaign_id, pbx, clock, settings_from(options, config), observer)
    results: list = []
    scheduler.run().addBoth(results.append)
    try:
        drive(clock, lambda: bool(results))
    except KeyboardInterrupt:
        scheduler.stop()
        drive(clock, lambda: bool(results))     # a second Ctrl-C leaves from here
    return _outcome(results[0])


def _outcome(result: Any) -> dict:
    if isinstance(result, dict):
        return result
    if result.check(CampaignFailed, UserError):
        raise UserError(result.getErrorMessage())
    result.raiseException()


def run_ami(conn, campaign_id: int, *, options: dict, config: Config, pbx_address: PbxAddress, script: str,
            observer: Observer | None = None, reactor: Any = None) -> dict:
    """Run the campaign through Asterisk; connects and logs in first (refused or unreachable: UserError)."""
    from twisted.internet import reactor as global_reactor

    from autocall.ami.client import AmiClient
    from autocall.campaign.pbx_ami import AmiPbx

    reactor = reactor or global_reactor
    client = AmiClient(host=pbx_address.host, port=pbx_address.port, username=pbx_address.user,
                       secret=config.ami_secret, reactor=reactor, ping_interval_ms=config.ami_ping_interval or None)
    box: dict[str, Any] = {}

    ami_log = logging.getLogger("autocall.ami")
    quiet_until_ready = ami_log.disabled

    @defer.inlineCallbacks
    def main():
        pbx = None
        try:
            # A refused login or an unreachable host is reported once, by the caller, as one line.
            ami_log.disabled = True
            try:
                yield client.start()
            finally:
                ami_log.disabled = quiet_until_ready
            pbx = AmiPbx(client, conn, reactor, channel_template=options["channel"],
                         context=config.outbound_context, script=script, agi_url=config.agi_url,
                         caller_id=options.get("caller_id") or "", amd=bool(options.get("amd")),
                         max_call_duration_ms=config.max_call_duration)
            box["scheduler"] = Scheduler(conn, campaign_id, pbx, reactor, settings_from(options, config), observer)
            box["result"] = yield box["scheduler"].run()
        except Exception as exc:  # reported by the caller as one line
            box["error"] = exc
        finally:
            if pbx is not None:
                pbx.close()
            yield client.stop()
            if reactor.running:
                reactor.stop()

    def graceful():
        scheduler = box.get("scheduler")
        if scheduler is None or "result" in box:
            return None
        stopping = scheduler.stop()
        stopping.addTimeout(config.grace_period / 1000, reactor)
        return stopping.addErrback(lambda _: None)

    reactor.addSystemEventTrigger("before", "shutdown", graceful)
    reactor.callWhenRunning(main)
    reactor.run()
    if "error" in box:
        error = box["error"]
        raise error if isinstance(error, UserError) else UserError(str(error))
    if "result" not in box:
        scheduler = box.get("scheduler")
        return dict(scheduler.summary(), stopped=True) if scheduler else {"stopped": True}
    return box["result"]
