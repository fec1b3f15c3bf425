"""Running a prepared campaign to its end on a PBX: the simulated one on a clock that follows real time,
Asterisk on the Twisted reactor.

The simulated PBX has no I/O, so it needs no reactor: a ``task.Clock`` is
moved forward with the wall clock (``drive_clock``). That keeps ``autocall
demo`` free to use the reactor for other things, and makes Ctrl-C simple: the
first one stops dialling and lets the calls in flight end, a second one quits
at once (the next run settles what was left open).

Before the first dial to Asterisk, the FastAGI server that answered calls are
sent to (``agi_url``) must accept a connection: a run whose calls would all
be answered into silence is refused.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from typing import Any, Callable
from urllib.parse import urlsplit

from twisted.internet import defer
from twisted.internet.task import Clock

from autocall.agi.service import outbox_events
from autocall.campaign.pbx import CallSettings
from autocall.campaign.pbx_pool import Member, PbxPool, shares
from autocall.campaign.pbx_sim import SimLine, SimPbx
from autocall.campaign.scheduler import CampaignFailed, Observer, Scheduler
from autocall.campaign.setup import PbxAddress, settings_from
from autocall.config import Config
from autocall.engine.ir import Program
from autocall.errors import UserError
from autocall.outbox.delivery import make_outbox


RECONNECT_S = 10.0


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


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP counted, not raised: a handler that raised inside a Deferred's callback would
    be swallowed by Twisted, and the run would go on. ``with StopSignals() as signals:``; ``signals.count``."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.count = 0
        self._previous: dict = {}

    def __enter__(self) -> "StopSignals":
        for signum in self.SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._heard)
            except ValueError:           # not the main thread: nothing to catch here
                pass
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _heard(self, signum, frame) -> None:
        self.count += 1


def run_sim(conn, campaign_id: int, *, program: Program, options: dict, config: Config, name: str,
            observer: Observer | None = None, clock: Clock | None = None,
            drive: Callable[..., None] = drive_clock) -> dict:
    """Run the campaign on the simulated PBX in (scaled) real time; returns the scheduler's summary."""
    if clock is None:
        clock = Clock()
        clock.advance(time.time())
    speed = float(options.get("sim_speed") or 1.0)
    pbx = SimPbx(conn, clock, CallSettings.from_options(name, "", options, config.max_call_duration),
                 SimLine(program, speed=speed, recordings_dir=config.recordings_dir, services=config.services))
    scheduler = Scheduler(conn, campaign_id, pbx, clock, settings_from(options, config), observer,
                          events=outbox_events(config))
    results: list = []
    with StopSignals() as signals:
        def finished() -> bool:
            if results:
                return True
            if signals.count >= 2:
                raise KeyboardInterrupt          # a second signal quits at once; the next run settles the rest
            if signals.count == 1 and not scheduler.stopping:
                scheduler.stop()                 # the first: no new call, the calls in flight end
            return bool(results)
        scheduler.run().addBoth(results.append)
        drive(clock, finished)
    return _outcome(results[0])


def _outcome(result: Any) -> dict:
    if isinstance(result, dict):
        return result
    if result.check(CampaignFailed, UserError):
        raise UserError(result.getErrorMessage())
    result.raiseException()


def check_agi_server(agi_url: str, timeout_s: float = 5.0) -> None:
    """Refuse the run (UserError) when nothing accepts a connection at ``agi_url`` (``agi://HOST[:PORT]``)."""
    try:
        parts = urlsplit(agi_url)
        scheme, host, port = parts.scheme, parts.hostname, parts.port or 4573
    except ValueError:
        scheme = host = port = None
    if scheme != "agi" or not host:
        raise UserError(f"agi_url {agi_url!r} is not agi://HOST[:PORT]; set agi_url to the FastAGI server "
                        f"(autocall serve) that Asterisk sends answered calls to")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(f"the FastAGI server at {agi_url} does not answer ({why}); answered calls would run no "
                        f"script: start autocall serve there, or set agi_url to where it listens") from None


def run_ami(conn, campaign_id: int, *, options: dict, config: Config, pbx_addresses: list[PbxAddress], script: str,
            name: str = "campaign", observer: Observer | None = None, reactor: Any = None) -> dict:
    """Run the campaign through Asterisk: one server, or several sharing the concurrency (``pbx_pool``).

    Checks ``agi_url`` and connects and logs in first. With one server, refused or unreachable is a
    ``UserError``; with several, only when none of them can be reached (the
    others are skipped, and connected again every ``RECONNECT_S``, until
    they answer).
    """
    from twisted.internet import reactor as global_reactor

    check_agi_server(config.agi_url)

    reactor = reactor or global_reactor
    outbox = make_outbox(config, reactor)
    box: dict[str, Any] = {}
    ami_log = logging.getLogger("autocall.ami")
    quiet_until_ready = ami_log.disabled
    settings = settings_from(options, config)
    several = len(pbx_addresses) > 1
    members = [Member(str(address), share) for address, share in
               zip(pbx_addresses, shares(settings.concurrency, len(pbx_addresses)))]
    clients: list = []

    def new_pbx(address: PbxAddress):
        from autocall.ami.client import AmiClient
        from autocall.campaign.pbx_ami import AmiLine, AmiPbx
        client = AmiClient(host=address.host, port=address.port, username=address.user, secret=config.ami_secret,
                           reactor=reactor, ping_interval_ms=config.ami_ping_interval or None)
        clients.append(client)

        def started(_):
            return AmiPbx(conn, reactor, CallSettings.from_options(name, script, options, config.max_call_duration),
                          AmiLine(client, channel_template=options["channel"], context=config.outbound_context,
                                  agi_url=config.agi_url))
        return client.start().addCallback(started)

    def connect_later(member: Member, address: PbxAddress) -> None:
        def retry():
            if "done" in box:
                return
            new_pbx(address).addCallbacks(lambda pbx: _joined(member, pbx),
                                          lambda failure: connect_later(member, address))
        reactor.callLater(RECONNECT_S, retry)

    def _joined(member: Member, pbx) -> None:
        if "done" in box:
            pbx.close()
            return
        member.pbx = pbx
        logging.getLogger("autocall.campaign").warning("%s is back: it takes its share of the calls again",
                                                       member.address)

    @defer.inlineCallbacks
    def main():
        pool = None
        try:
            # A refused login or an unreachable host is reported once, by the caller, as one line.
            ami_log.disabled = True
            try:
                results = yield defer.DeferredList([new_pbx(address) for address in pbx_addresses],
                                                   consumeErrors=True)
            finally:
                ami_log.disabled = quiet_until_ready
            errors = [value for ok, value in results if not ok]
            if len(errors) == len(results) or (errors and not several):
                errors[0].raiseException()
            for member, address, (ok, value) in zip(members, pbx_addresses, results):
                if ok:
                    member.pbx = value
                else:
                    logging.getLogger("autocall.campaign").warning(
                        "%s: %s; skipped until it answers (tried again every %g s)", member.address,
                        value.getErrorMessage(), RECONNECT_S)
                    connect_later(member, address)
            backend = PbxPool(members, reactor) if several else members[0].pbx
            pool = backend
            box["scheduler"] = Scheduler(conn, campaign_id, backend, reactor, settings, observer,
                                         events=outbox_events(config))
            outbox.start()
            box["result"] = yield box["scheduler"].run()
        except Exception as exc:  # reported by the caller as one line
            box["error"] = exc
        finally:
            box["done"] = True
            if pool is not None:
                pool.close()
            yield outbox.stop()
            for client in clients:
                yield client.stop()
            if reactor.running:
                reactor.stop()

    def graceful():
        scheduler = box.get("scheduler")
        if scheduler is None or "result" in box:
            return None
        # Wait for the calls in flight, at most the grace period; the scheduler's own Deferred is not cancelled
        # (its failure would read as an error): a separate one times out.
        waited: defer.Deferred = defer.Deferred()

        def ended(result):
            if not waited.called:
                waited.callback(None)
            return result
        scheduler.stop().addBoth(ended)
        waited.addTimeout(config.grace_period / 1000, reactor)
        return waited.addErrback(lambda _: None)

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
