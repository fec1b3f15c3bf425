"""fetch through the FastAGI server: the CPU a request adds, 500 calls fetching at once, a dead service's cost.

`autocall serve` runs in a process of its own; a local HTTP service (Twisted
web, another process) answers `/accounts/...` at once and never answers
`/never...`. This process plays Asterisk (benchmarks/agi_load.py's caller:
the same gather + branch call, 8 AGI commands). Printed, each against a
baseline of the same run:

- the server CPU per call of the dialogue without a fetch and with one
  (`fetch account from crm "/accounts/{caller}"` after `answer`); the
  difference is what a fetch costs the server. Target: under 2 ms;
- 500 callers at once, each call doing a fetch. Target: 0 failed calls;
- AGI commands per CPU-second of the fetching calls alone, then while 50
  other calls wait on a service that never answers (10 s timeout). Target:
  no more than 10% lower.

    python benchmarks/server_web_bench.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import benchmarks.agi_load as load  # noqa: E402
from benchmarks.web_bench import SERVER  # noqa: E402

CPU_MS_TARGET = 2.0
LOSS_TARGET = 0.10
FETCH = '    fetch account from crm "/accounts/{caller}" timeout 5s\n'
NEVER = '    fetch account from crm "/never/{caller}" timeout 10s\n'


def script(url: str, fetch_line: str, name: str = "bench") -> str:
    text = load.SCRIPT.replace("dialogue bench\n", f'dialogue {name}\nservice crm = "{url}"\n')
    return text.replace("    answer\n", "    answer\n" + fetch_line, 1) if fetch_line else text


def start(workdir: Path, url: str, fetch_line: str, port: int) -> subprocess.Popen:
    scripts = workdir / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "bench.dlg").write_text(script(url, fetch_line), encoding="utf-8")
    (scripts / "never.dlg").write_text(script(url, NEVER, "never"), encoding="utf-8")
    config = workdir / "autocall.toml"
    config.write_text(f'database = "{workdir / "calls.db"}"\nsounds_dir = "{workdir / "sounds"}"\n'
                      f'recordings_dir = "{workdir / "recordings"}"\nlog_level = "warning"\n'
                      f'[services.crm]\nurl = "{url}"\nmax_concurrent = 200\n', encoding="utf-8")
    log_path = workdir / "serve.log"
    process = subprocess.Popen([sys.executable, "-m", "autocall", "serve", "--scripts", str(scripts), "--port",
                                str(port), "--config", str(config)], stdout=open(log_path, "w"),
                               stderr=subprocess.STDOUT, cwd=workdir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited at start; see {log_path}")
        try:
            with load.socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not start; see {log_path}")


def hold_never(port: int, count: int) -> list:
    """``count`` calls of never.dlg, connected and waiting on the dead service (their sockets kept open)."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    environment = load.ENVIRONMENT
    load.ENVIRONMENT = environment.replace("/bench", "/never").replace("script: bench", "script: never")
    try:
        stats = load.Stats()
        caller = load.make_caller(stats, [10_000_000], False, lambda protocol: None)
        protocols = [caller() for _ in range(count)]
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        for protocol in protocols:
            connectProtocol(endpoint, protocol)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            reactor.iterate(0.01)        # each call answered and now waiting in its fetch
    finally:
        load.ENVIRONMENT = environment
    return protocols


def cpu_per_call(port: int, pid: int, calls: int, rounds: int = 3) -> tuple[float, float, int]:
    """The best of ``rounds``: (server CPU ms per call, AGI commands per CPU-second, failed calls)."""
    best = None
    for _ in range(rounds):
        result = load.throughput(port, pid, calls)
        per_call = result["cpu_s"] / max(calls, 1) * 1000
        if best is None or per_call < best[0]:
            best = (per_call, result["cmds_cpu_s"], result["throughput_failed"])
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    service = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{int(service.stdout.readline())}"
    servers = []
    try:
        with tempfile.TemporaryDirectory(prefix="webbench-") as folder:
            ports = {"plain": load.free_port(), "fetch": load.free_port()}
            plain = start(Path(folder) / "plain", url, "", ports["plain"])
            servers.append(plain)
            fetch = start(Path(folder) / "fetch", url, FETCH, ports["fetch"])
            servers.append(fetch)
            for port in ports.values():
                load.run_load(port, 20, 200)            # compiled, prompts rendered, connections pooled
            base_ms, _, base_failed = cpu_per_call(ports["plain"], plain.pid, args.calls)
            fetch_ms, fetch_rate, fetch_failed = cpu_per_call(ports["fetch"], fetch.pid, args.calls)
            added = fetch_ms - base_ms
            print(f"server CPU per call, no fetch (baseline)    {base_ms:7.3f} ms  ({base_failed} failed)")
            print(f"server CPU per call, one fetch              {fetch_ms:7.3f} ms  ({fetch_failed} failed)")
            print(f"added by a fetch                            {added:7.3f} ms CPU  (target < {CPU_MS_TARGET} ms)")

            storm, wall, _ = load.run_load(ports["fetch"], 500, 500, timeout=60)
            print(f"500 callers at once, each fetching          {storm.completed} completed, {storm.failed} failed "
                  f"in {wall:.2f} s  (target 0 failed)")

            held = hold_never(ports["fetch"], 50)
            _, dead_rate, dead_failed = cpu_per_call(ports["fetch"], fetch.pid, min(args.calls, 1500), rounds=2)
            for protocol in held:
                if protocol.transport is not None:
                    protocol.transport.abortConnection()
            loss = 1 - dead_rate / fetch_rate if fetch_rate else float("nan")
            print(f"AGI commands per CPU-second, fetching calls {fetch_rate:9.0f}")
            print(f"  ... with 50 calls on a dead service       {dead_rate:9.0f}  ({dead_failed} failed; "
                  f"change {-loss:+.1%}, target no lower than {-LOSS_TARGET:.0%})")
            ok = added < CPU_MS_TARGET and storm.failed == 0 and fetch_failed == 0 and loss <= LOSS_TARGET
            print("targets met" if ok else "TARGETS MISSED")
            return 0 if ok else 1
    finally:
        for process in servers:
            load.stop_server(process)
        service.terminate()
        service.wait(10)


if __name__ == "__main__":
    sys.exit(main())
