"""``make demo``'s campaign: 20 contacts called on the simulated PBX, with the live display and the status table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

from autocall.audio.prompt_checks import audio_checks
from autocall.campaign.progress import progress_for, write_status
from autocall.campaign.runner import run_sim
from autocall.campaign.setup import prepare_campaign
from autocall.config import Config
from autocall.dsl.compiler import Compiler
from autocall.errors import UserError
from autocall.store import campaigns as store
from autocall.store.db import connect

EXAMPLE = Path(__file__).resolve().parents[2] / "scripts_examples" / "appointment_reminder.dlg"
DATABASE = "campaign-demo.db"         # in the demo's folder
OPTIONS = {"concurrency": 5, "rate": "20/s", "attempts": 2, "retry_after": "1s", "window": None,
           "timezone": None, "pbx": "sim", "channel": "PJSIP/{number}@trunk", "caller_id": "Acme Clinic <5551234>",
           "amd": True, "sim_speed": 20.0}
# (name, sim_outcome, sim_keys): who answers and what they press.
# Keys for scripts_examples/appointment_reminder.dlg: 1 confirms, 2 then 1 cancels, 3 repeats,
# 9 opts out, w is a caller who stays silent, h one who hangs up.
PEOPLE = [
    ("Alice", "answer", "1"), ("Bruno", "busy", ""), ("Chiara", "answer", "21"), ("Dario", "noanswer", ""),
    ("Elena", "machine", ""), ("Fabio", "answer", "1"), ("Giulia", "answer", "w1"), ("Hugo", "congestion", ""),
    ("Irene", "answer", "22"), ("Jonas", "answer", ""), ("Karin", "failed", ""), ("Luca", "answer", "31"),
    ("Marta", "answer", "h"), ("Nadia", "busy", ""), ("Omar", "answer", "9"), ("Paola", "machine", ""),
    ("Quinn", "answer", "21"), ("Rosa", "noanswer", ""), ("Sami", "answer", "1"), ("Tea", "answer", "1"),
]
FALLBACK_SCRIPT = """\
# Used by the campaign demo when scripts_examples/appointment_reminder.dlg is missing.
dialogue appointment_reminder

param name
param date
param time

start main

state main:
    answer
    menu "Hello {name}, this is Acme Clinic. Your appointment is on {date} at {time}. Press 1 to confirm or 2 to cancel." timeout 4s tries 2:
        1 -> confirmed
        2 -> cancelled
        failure -> no_answer

state confirmed:
    result "confirmed"
    say "Thank you. See you then."

state cancelled:
    result "cancelled"
    say "Your appointment is cancelled. Goodbye."

state no_answer:
    result "no_response"
    say "We will call you again. Goodbye."
"""


def write_demo_contacts(path: Path) -> None:
    """The demo's contact list: 20 people, mixed outcomes and keys."""
    lines = ["number,name,date,time,sim_outcome,sim_keys"]
    for index, (name, outcome, keys) in enumerate(PEOPLE):
        day = ("Monday", "Tuesday", "Wednesday", "Thursday")[index % 4]
        hour = f"{9 + index % 8}:{'30' if index % 2 else '00'}"
        lines.append(f"+39 06 555 {1200 + index:04d},{name},{day},{hour},{outcome},{keys}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_demo_campaign(workdir: str | Path, out: TextIO, database: str | None = None, *, services=None,
                      events=None) -> dict:
    """Create the 20-contact list in ``workdir``, call it on the simulated PBX, show progress and status.

    Returns the final status counts. A fresh campaign each time: its own
    database in ``workdir`` unless ``database`` is given (then a new name).
    ``services``/``events``: the configuration's ``[services]``/``[events]`` (the demo's sample CRM).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    script = EXAMPLE
    if not script.is_file():
        script = workdir / "appointment_reminder.dlg"
        script.write_text(FALLBACK_SCRIPT, encoding="utf-8")
    contacts = workdir / "demo_contacts.csv"
    write_demo_contacts(contacts)
    result = Compiler(**audio_checks()).compile_file(str(script))
    if not result.ok:
        raise UserError(f"{script}: does not compile:\n{result.render()}")
    if database is None:
        database = str(workdir / DATABASE)
        Path(database).unlink(missing_ok=True)
        name = "demo-reminders"
    else:
        name = f"demo-reminders-{int(time.time())}"
    conn = connect(database)
    try:
        campaign_id, report = prepare_campaign(conn, name=name, contacts_path=str(contacts),
                                               script_path=str(script), program=result.program,
                                               options=dict(OPTIONS), now=time.time())
        out.write(f"campaign {name}: {report.imported} contacts from {contacts.name}, script {script.name}, "
                  f"simulated PBX ({OPTIONS['sim_speed']:g}x speed), {OPTIONS['concurrency']} calls at once\n")
        observer = progress_for(name, out)
        config = Config(database=database, recordings_dir=str(workdir / "recordings"),
                        **({"services": services} if services else {}), **({"events": events} if events else {}))
        with observer:
            run_sim(conn, campaign_id, program=result.program, options=OPTIONS, config=config, name=name,
                    observer=observer)
        return write_status(conn, store.campaign_by_name(conn, name), out)
    finally:
        conn.close()
