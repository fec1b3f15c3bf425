"""A process that queues notifies and delivers them (``enqueue``), or only delivers until nothing is pending
(``deliver``): the two halves of the SIGKILL test. ``python -m tests.web.outbox_worker MODE DB URL N``."""

from __future__ import annotations

import sys

from twisted.internet import reactor, task

from autocall.outbox.delivery import Outbox
from autocall.services_config import ServiceConfig
from autocall.store import outbox as store


def main(mode: str, database: str, url: str, count: int) -> None:
    services = {"crm": ServiceConfig("crm", url, max_concurrent=2)}
    outbox = Outbox(database, services, reactor=reactor, poll_s=0.1, timeout_s=2.0, lease_s=1.0)

    def begin() -> None:
        outbox.start()
        if mode == "enqueue":
            queued = [outbox.enqueue_notify(call_id=f"c{i % 5}", service="crm", path=f"/events/{i}", body={"n": i})
                      for i in range(count)]
            task.deferLater(reactor, 0, lambda: None).addCallback(
                lambda _: print("queued", len([d for d in queued if d.called]), flush=True))
        else:
            def check() -> None:
                if not store.counts(outbox.conn)["pending"] and not outbox.in_flight:
                    outbox.stop().addBoth(lambda _: reactor.stop())
            task.LoopingCall(check).start(0.1)

    reactor.callWhenRunning(begin)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
