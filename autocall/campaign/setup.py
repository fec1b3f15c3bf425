"""Turning ``campaign run`` options into settings, and a contact list into a campaign (new or resumed).

Resuming (docs/campaigns.md, "Running the same command again"): the campaign
is found by name. Its contact list must be byte-for-byte the one it was
started from (checked by SHA-256), else the run is refused; the script must
have the same file name and still accept the list's columns. Every other
option is taken from the new command and replaces the stored one; the
changes are reported. Raising ``--attempts`` reopens contacts that had ended
busy/noanswer/congestion/failed with fewer attempts than the new limit.
A run joins the dialers already running the campaign (the work is shared)
when its options are theirs (where it dials may differ); with other
options it is refused before anything stored changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from autocall.campaign.contacts import Contact, ContactReader, file_sha256, parse_column_map
from autocall.campaign.scheduler import DEFAULT_RETRY_MS, RETRYABLE, CampaignSettings
from autocall.durations import parse_duration_ms
from autocall.engine.ir import Program
from autocall.errors import UserError
from autocall.hours import HoursError, parse_schedule
from autocall.store import campaigns as store
from autocall.store.calls import dnc_among
from autocall.store.db import integrity_errors

MAX_LISTED_REJECTS = 50
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|m|min|h|hour)\s*$")
_PER = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}


# -- options ---------------------------------------------------------------------------------------------

def parse_rate(text: str | None) -> float | None:
    """``"2/s"``, ``"30/m"``, ``"100/h"`` -> dials per second; None or ``"none"`` -> no limit."""
    if text is None or text.strip().lower() in ("", "none", "unlimited"):
        return None
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"--rate {text!r}: write dials per time unit, e.g. 2/s, 30/m or 100/h")
    return float(match.group(1)) / _PER[match.group(2)]


def parse_retry_after(text: str | None) -> dict[str, int]:
    """``"10m"`` (every retried outcome) or ``"busy=5m,noanswer=30m,failed=1h"`` -> ms by outcome."""
    delays = {"default": DEFAULT_RETRY_MS}
    if not text:
        return delays
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        outcome, sep, duration = part.partition("=")
        if not sep:
            delays["default"] = parse_duration_ms(part, what="--retry-after")
            continue
        outcome = outcome.strip().lower()
        if outcome not in RETRYABLE:
            raise UserError(f"--retry-after {part!r}: '{outcome}' is not retried; "
                            f"per-outcome delays are for {', '.join(RETRYABLE)}")
        delays[outcome] = parse_duration_ms(duration.strip(), what=f"--retry-after {outcome}")
    return delays


def parse_window(spec: str | None, timezone_name: str | None):
    if spec is None:
        if timezone_name is not None:
            raise UserError("--timezone applies to --window; give --window too, e.g. --window \"mon-fri 09:00-20:00\"")
        return None
    try:
        return parse_schedule(spec, timezone_name)
    except HoursError as exc:
        raise UserError(f"--window {spec!r}: {exc}") from None


@dataclass(frozen=True)
class PbxAddress:
    """``sim`` or ``ami://USER@HOST[:PORT]`` (the secret comes from ``ami_secret``, never the URL)."""

    kind: str
    user: str = ""
    host: str = ""
    port: int = 5038

    def __str__(self) -> str:
        return "sim" if self.kind == "sim" else f"ami://{self.user}@{self.host}:{self.port}"


def parse_pbx(text: str) -> PbxAddress:
    if text.strip().lower() == "sim":
        return PbxAddress("sim")
    if not text.lower().startswith("ami://"):
        raise UserError("--pbx: write 'sim' or ami://USER@HOST:5038")
    netloc = text[len("ami://"):].split("/", 1)[0]
    userinfo, at, hostport = netloc.rpartition("@")
    if ":" in userinfo:
        # Never echo what was written: the part after ':' is a password.
        raise UserError("--pbx: do not put the AMI secret in the URL; set ami_secret in autocall.toml "
                        "or the AUTOCALL_AMI_SECRET environment variable, and write ami://USER@HOST:5038")
    if not at or not userinfo:
        raise UserError("--pbx: the AMI URL needs the manager user: ami://USER@HOST:5038")
    try:
        parts = urlsplit(f"//{hostport}")
        port = parts.port or 5038
    except ValueError:
        raise UserError(f"--pbx: {hostport!r} is not HOST or HOST:PORT") from None
    if not parts.hostname:
        raise UserError("--pbx: the AMI URL needs a host: ami://USER@HOST:5038")
    return PbxAddress("ami", userinfo, parts.hostname, port)


def parse_pbxes(texts: list[str]) -> list[PbxAddress]:
    """``--pbx`` given once or more: ``sim`` alone, or distinct ``ami://`` servers."""
    addresses = [parse_pbx(text) for text in texts]
    if len(addresses) > 1:
        if any(address.kind == "sim" for address in addresses):
            raise UserError("--pbx sim cannot be combined with other --pbx; give several ami://USER@HOST:5038 "
                            "to spread the calls over several Asterisk servers")
        seen = set()
        for address in addresses:
            if (address.host, address.port) in seen:
                raise UserError(f"--pbx {address} is given twice; give each Asterisk server once")
            seen.add((address.host, address.port))
    return addresses


def settings_from(options: dict, config=None) -> CampaignSettings:
    """The scheduler's settings from the stored options (``options_from_args`` form) and, for this dialer's
    lease, the configuration."""
    lease = {"lease_s": config.worker_lease / 1000} if config is not None else {}
    return CampaignSettings(
        concurrency=options["concurrency"], rate=parse_rate(options.get("rate")),
        max_attempts=options["attempts"], retry_after_ms=parse_retry_after(options.get("retry_after")),
        window=parse_window(options.get("window"), options.get("timezone")), **lease)


def check_options(options: dict) -> None:
    """Refuse impossible values with one line each (the parsers do the rest)."""
    if options["concurrency"] < 1:
        raise UserError(f"--concurrency {options['concurrency']}: must be at least 1")
    if options["attempts"] < 1:
        raise UserError(f"--attempts {options['attempts']}: must be at least 1")
    settings_from(options)


# -- importing or resuming ---------------------------------------------------------------------------------

@dataclass
class ImportReport:
    """What the import found: counts, and the first rejected rows (all of them are in the database)."""

    created: bool = True
    rows_read: int = 0
    imported: int = 0
    blank_lines: int = 0
    dnc: int = 0
    rejected: int = 0
    listed: list[tuple[int, str, str]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    changed_options: list[str] = field(default_factory=list)
    reopened: int = 0

    def add_reject(self, line: int, number: str, reason: str) -> None:
        self.rejected += 1
        if len(self.listed) < MAX_LISTED_REJECTS:
            self.listed.append((line, number, reason))


def exported_variables(program: Program) -> list[str]:
    """The script's variables and gathered names that the export shows as columns (never a secret one)."""
    data = program.data
    secret = set(data.get("secret", []))
    names = [v["name"] for v in data.get("vars", [])] + list(data.get("gathered", []))
    return [name for index, name in enumerate(names) if name not in secret and name not in names[:index]]


def _reader(contacts_path: str, program: Program, options: dict) -> ContactReader:
    return ContactReader(contacts_path, program, delimiter=options.get("delimiter"),
                         column_map=parse_column_map(options.get("columns")), country=options.get("country"))


def prepare_campaign(conn, *, name: str, contacts_path: str, script_path: str, program: Program,
                     options: dict, now: float, claim: bool = False) -> tuple[int, ImportReport]:
    """The id of campaign ``name``, importing ``contacts_path`` when it is new; see the module docstring.

    ``claim`` (``campaign run``): UserError, before anything changes, if other dialers run the campaign with
    other options (with the same ones, this run joins them).
    """
    existing = store.campaign_by_name(conn, name)
    script = Path(script_path).stem
    if existing is not None:
        if claim:
            _claim(conn, existing["id"], name, options, now)
        return existing["id"], _resume(conn, existing, contacts_path, script, program, options, now)
    reader = _reader(contacts_path, program, options)
    report = ImportReport(ignored_columns=[c for c in reader.columns.extra])
    try:
        campaign_id = _import(conn, reader, report, name, script, script_path, contacts_path, options, now)
    except integrity_errors():
        # Another dialer, started at the same time, created it first: join it.
        existing = store.campaign_by_name(conn, name)
        if existing is None:
            raise
        if claim:
            _claim(conn, existing["id"], name, options, now)
        return existing["id"], _resume(conn, existing, contacts_path, script, program, options, now)
    finally:
        reader.close()
    report.rows_read, report.blank_lines = reader.rows_read, reader.blank_lines
    return campaign_id, report


def _claim(conn, campaign_id: int, name: str, options: dict, now: float) -> None:
    """Refuse, before anything stored changes, a run that would change the options of a campaign other dialers
    are running (the same options: it joins them, and the work is shared)."""
    other = store.claim_campaign(conn, campaign_id, now, options=options)
    if other is not None:
        raise UserError(f"campaign '{name}' is being run by another dialer ({other}) with other options; run it "
                        f"with the same options to share the work, or stop it first (or pause it with "
                        f"autocall campaign pause {name})")


IMPORT_BATCH = 500


def _import(conn, reader: ContactReader, report: ImportReport, name: str, script: str, script_path: str,
            contacts_path: str, options: dict, now: float) -> int:
    """Create the campaign and import every row of the list, in one transaction, a batch of rows per
    statement (a round trip to PostgreSQL per row would make a big list take minutes)."""
    with store.transaction(conn):
        campaign_id = store.create_campaign(
            conn, name=name, script=script, script_path=str(Path(script_path).resolve()),
            dialogue=reader.program.name, contacts_path=str(Path(contacts_path).resolve()), contacts_sha256="",
            header=reader.columns.header, options=options, now=now, param_headers=reader.columns.param_headers(),
            variables=exported_variables(reader.program))
        batch: list = []
        for item in reader.rows():
            batch.append(item)
            if len(batch) >= IMPORT_BATCH:
                _import_batch(conn, campaign_id, batch, report, now)
                batch = []
        _import_batch(conn, campaign_id, batch, report, now)
        store.finish_import(conn, campaign_id, reader.sha256, reader.rows_read, reader.blank_lines)
    return campaign_id


def _import_batch(conn, campaign_id: int, items: list, report: ImportReport, now: float) -> None:
    """Rows in file order: contacts inserted together; rejected rows and duplicates stored and reported in order."""
    contacts = [item for item in items if isinstance(item, Contact)]
    on_dnc = dnc_among(conn, [contact.number for contact in contacts])
    inserted = store.add_contacts(conn, campaign_id, contacts, now=now, dnc=on_dnc)
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, Contact):
            store.add_reject(conn, campaign_id, item.line, item.number, item.reason)
            report.add_reject(item.line, item.number, item.reason)
            continue
        if item.number in inserted and item.number not in seen:
            seen.add(item.number)
            report.imported += 1
            report.dnc += item.number in on_dnc
            continue
        first = store.line_of_number(conn, campaign_id, item.number)
        reason = f"duplicate of line {first} (the same number {item.number})"
        store.add_reject(conn, campaign_id, item.line, item.number, reason)
        report.add_reject(item.line, item.number, reason)


def _resume(conn, campaign: dict, contacts_path: str, script: str, program: Program, options: dict,
            now: float) -> ImportReport:
    name = campaign["name"]
    if file_sha256(contacts_path) != campaign["contacts_sha256"]:
        raise UserError(f"campaign '{name}' was started from a different contact list "
                        f"({campaign['contacts_path']}) and {contacts_path} is not the same file any more; "
                        f"run the new list under another --name (contacts of '{name}' stay as they are)")
    if script != campaign["script"]:
        raise UserError(f"campaign '{name}' runs the script '{campaign['script']}', not '{script}'; "
                        f"use the same script or another --name")
    _reader(contacts_path, program, options).close()    # the header still gives every required param
    report = ImportReport(created=False, rows_read=campaign["rows_read"], blank_lines=campaign["blank_lines"])
    counts = store.status_counts(conn, campaign["id"])
    report.imported, report.rejected = counts["contacts"], counts["rejected"]
    report.dnc = counts["by_outcome"].get("dnc", 0)      # a do-not-call contact is always done
    old = campaign["options"]
    report.changed_options = [f"{key} {old.get(key)!s} -> {options.get(key)!s}"
                              for key in sorted(set(old) | set(options)) if old.get(key) != options.get(key)]
    store.update_campaign_options(conn, campaign["id"], options, now)
    report.reopened = store.reopen_retryable(conn, campaign["id"], options["attempts"], RETRYABLE, now)
    return report
