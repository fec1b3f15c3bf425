"""A report as tables on the terminal (rich), the previous period and the change beside each figure with
``--compare``."""

from __future__ import annotations

from typing import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from autocall.report.figures import WEEKDAYS, printable

SHADES = "·░▒▓█"
MAX_EXITS = 4


def render(report: dict, console: Console) -> None:
    previous = report.get("previous")
    period = report["period"]
    scope = "".join(f", {name} {period[name]}" for name in ("script", "campaign") if period[name])
    console.print(Text(f"Calls from {_when(period['since'])} to {_when(period['until'])}{scope}", style="bold"))
    if previous is not None:
        console.print(f"compared with {_when(previous['period']['since'])} to {_when(previous['period']['until'])}")
    console.print()
    console.print(_totals(report, previous))
    if report["calls"] == 0 and not report["campaigns"]:
        console.print("No calls in this period.")
        return
    if report["results"]:
        console.print(_counts("Results", "result", report["results"], previous and previous["results"]))
    if report["transfers"]["total"]:
        console.print(_transfers(report["transfers"]))
    if report["states"]:
        console.print(_funnel(report["states"]))
    if report["inputs"]:
        console.print(_inputs(report["inputs"]))
    if report["calls"]:
        console.print(_hours(report["by_hour"]))
    for name, campaign in report["campaigns"].items():
        console.print(_campaign(name, campaign, previous and previous["campaigns"].get(name)))
    missing = report.get("not_recorded")
    if missing:
        console.print(Text(f"Note: {missing['calls']} of these calls were recorded before AutoCall kept the "
                           f"details reports need; for them the report cannot give: "
                           f"{'; '.join(missing['figures'])}.", style="yellow"))


def _when(iso: str) -> str:
    return iso[:16].replace("T", " ")


class _Table(Table):
    """A rich table whose cells are plain text: names and results come from scripts and callers, and are
    never read as rich markup (``[bold]``) or terminal control codes."""

    def add_row(self, *cells, **options) -> None:
        super().add_row(*(Text(printable(cell)) if isinstance(cell, str) else cell for cell in cells), **options)



def _table(title: str, columns: Iterable[str], compare: bool = False) -> Table:
    table = _Table(title=Text(title), title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    if compare:
        table.add_column("previous", justify="right")
        table.add_column("change", justify="right")
    return table


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _change(now, before, percent: bool = False) -> Text:
    if now is None or before is None:
        return Text("-")
    delta = now - before
    if percent:
        text = f"{delta * 100:+.1f} pt"
    elif before:
        text = f"{delta:+,.1f} ({delta / before * 100:+.0f}%)" if isinstance(delta, float) else \
            f"{delta:+,} ({delta / before * 100:+.0f}%)"
    else:
        text = f"{delta:+,.1f}" if isinstance(delta, float) else f"{delta:+,}"
    return Text(text, style="green" if delta > 0 else "red" if delta < 0 else "")


def _totals(report: dict, previous: dict | None) -> Table:
    table = _table("Totals", ("figure", "value"), previous is not None)
    rows = [("calls", ("calls",), False)]
    rows += [(f"ended by {way}", ("ended_by", way), False) for way in report["ended_by"]]
    rows += [("duration average (s)", ("duration_s", "average"), False),
             ("duration median (s)", ("duration_s", "median"), False),
             ("duration 90th percentile (s)", ("duration_s", "p90"), False),
             ("transfers", ("transfers", "total"), False),
             ("transfers answered", ("transfers", "answered"), False),
             ("contained", ("containment", "contained"), False),
             ("containment", ("containment", "share"), True)]
    return _figure_rows(table, rows, report, previous)


def _figure_rows(table: Table, rows: list[tuple[str, tuple, bool]], data: dict, previous: dict | None) -> Table:
    """A row per ``(label, path in data, is a share)``, with the previous value and the change if given."""
    for label, path, percent in rows:
        value = _dig(data, path)
        cells = [label, _percent(value) if percent else _number(value)]
        if previous is not None:
            before = _dig(previous, path)
            cells += [_percent(before) if percent else _number(before), _change(value, before, percent)]
        table.add_row(*cells)
    return table


def _dig(data: dict, path: tuple):
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _counts(title: str, label: str, counts: dict, previous: dict | None) -> Table:
    table = _table(title, (label, "calls"), previous is not None)
    names = list(counts) + [name for name in (previous or {}) if name not in counts]
    for name in names:
        cells = [name, _number(counts.get(name, 0))]
        if previous is not None:
            cells += [_number(previous.get(name, 0)), _change(counts.get(name, 0), previous.get(name, 0))]
        table.add_row(*cells)
    return table


def _transfers(transfers: dict) -> Table:
    statuses = sorted({status for counts in transfers["by_destination"].values() for status in counts})
    table = _table("Transfers by destination and dial status", ["destination", *statuses, "total"])
    for destination, counts in transfers["by_destination"].items():
        table.add_row(destination, *(_number(counts.get(status, 0)) for status in statuses),
                      _number(sum(counts.values())))
    return table


def _funnel(states: dict) -> Table:
    table = _table("States: calls that entered each one and where they went", (
        "state", "entered", "visits", "went to", "hung up there", "error there"))
    for key, entry in states.items():
        exits = list(entry["exits"].items())
        shown = ", ".join(f"{target} {count:,}" for target, count in exits[:MAX_EXITS])
        if len(exits) > MAX_EXITS:
            shown += f", {len(exits) - MAX_EXITS} more"
        table.add_row(key, _number(entry["entered"]), _number(entry["visits"]), shown,
                      _percent(entry["hangup_share"]), _percent(entry["error_share"]))
    return table


def _inputs(inputs: list[dict]) -> Table:
    table = _table("Menus and gathers", ("input", "tries", "keys chosen", "invalid", "timeout", "failure"))
    for item in inputs:
        label = f"{item['state']} {item['op']}" + (f" {item['name']}" if item["name"] else "")
        if item["secret"]:
            keys = "secret: " + ", ".join(f"{outcome} {count:,}" for outcome, count in item["outcomes"].items())
        else:
            keys = ", ".join(f"{key} {count:,}" for key, count in item["keys"].items()) or "-"
            if item["other_keys"]:
                keys += f", others {item['other_keys']:,}"
        table.add_row(label, _number(item["count"]), keys, _number(item["invalid"]), _number(item["timeout"]),
                      _number(item["failure"]))
    return table


def _hours(by_hour: dict[str, list[int]]) -> Table:
    peak = max((count for row in by_hour.values() for count in row), default=0) or 1
    table = _table("Calls by weekday and hour (darker: more calls)",
                   ("day", "0h" + " " * 10 + "12h" + " " * 9, "calls", "busiest hour"))
    table.columns[1].justify = "left"
    for day in WEEKDAYS:
        row = by_hour[day]
        shades = "".join(SHADES[0] if not count else SHADES[max(1, round(count / peak * (len(SHADES) - 1)))]
                         for count in row)
        busiest = max(range(24), key=row.__getitem__)
        table.add_row(day, shades, _number(sum(row)), f"{busiest:02d}:00" if row[busiest] else "-")
    return table


def _campaign(name: str, campaign: dict, previous: dict | None) -> Table:
    table = _table(f"Campaign {name} (script {campaign['script']})", ("figure", "value"), previous is not None)
    rows = [("contacts in the list", ("contacts",), False), ("contacts called", ("contacts_tried",), False),
            ("attempts", ("attempts",), False), ("attempts per contact", ("attempts_per_contact",), False),
            ("answer rate", ("answer_rate",), True), ("machine rate", ("machine_rate",), True),
            ("average talk time (s)", ("average_talk_s",), False)]
    rows += [(f"outcome {outcome}", ("outcomes", outcome), False) for outcome in campaign["outcomes"]]
    rows += [(f"result {result}", ("results", result), False) for result in campaign["results"]]
    return _figure_rows(table, rows, campaign, previous)
