"""Report speed: ``autocall report`` over 1,000,000 call records (a year of the support line).

Targets (issue 14): the report (``--json``) in under 10 s, ``--html`` in under
20 s, both computed in SQL (a few thousand aggregate rows reach Python,
whatever the number of calls). The database is generated once by
``report_data.py`` and kept in the temporary folder for later runs
(``--fresh`` makes it again); its generation time is printed, not targeted.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report_data import fill  # noqa: E402

CALLS = 1_000_000
REPORT_S, HTML_S = 10.0, 20.0


def timed(args: list[str], env: dict) -> float:
    """Wall seconds of ``autocall ARGS``; its CPU seconds (user + system) are printed beside."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    begun = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autocall", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - begun
    if done.returncode != 0:
        sys.exit(f"autocall {' '.join(args)} failed: {done.stderr.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(f"  autocall {' '.join(args)}: {seconds:.2f} s wall, {cpu:.2f} s CPU")
    return seconds


def main() -> int:
    folder = Path(tempfile.gettempdir())
    database = folder / f"autocall-report-bench-{CALLS}.db"
    if "--fresh" in sys.argv or not database.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        partial = Path(f"{database}.part")
        partial.unlink(missing_ok=True)
        print(f"generating {CALLS:,} call records in {database} ...")
        seconds = fill(str(partial), CALLS)
        partial.rename(database)
        print(f"  generated in {seconds:.1f} s")
    env = dict(os.environ, AUTOCALL_DATABASE=str(database), AUTOCALL_SCRIPTS_DIR=str(ROOT / "scripts_examples"))
    env.pop("AUTOCALL_CONFIG", None)
    html = folder / "autocall-report-bench.html"
    report_s = timed(["report", "--since", "400d", "--json"], env)
    terminal_s = timed(["report", "--since", "400d"], env)
    html_s = timed(["report", "--since", "400d", "--json", "--html", str(html)], env)
    compare_s = timed(["report", "--since", "200d", "--compare", "--json"], env)
    print(f"report --json over {CALLS:,} calls:     {report_s:6.2f} s (target < {REPORT_S:g} s)")
    print(f"report (terminal tables):              {terminal_s:6.2f} s")
    print(f"report --html:                         {html_s:6.2f} s (target < {HTML_S:g} s), "
          f"page {html.stat().st_size / 1024:.0f} KiB")
    print(f"report --compare (two half-periods):   {compare_s:6.2f} s")
    ok = report_s < REPORT_S and html_s < HTML_S
    print("OK" if ok else "TOO SLOW")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
