"""A report as tables on the terminal (rich), the previous period and the change beside each figure with
``--compare``."""

from __future__ import annotations

from typing import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from autocall.report.cells import (TOTALS, campaign_figures, dig, exits_text, figure, input_keys_text,
                                   input_label, number, statuses)
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
        console.print(_funnel(report["states"], previous and previous["states"]))
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
    return _figure_rows(_table("Totals", ("figure", "value"), previous is not None), TOTALS, report, previous)


def _figure_rows(table: Table, rows: list[tuple[str, tuple, bool]], data: dict, previous: dict | None) -> Table:
    """A row per ``(label, path in data, is a share)``, with the previous value and the change if given."""
    for label, path, share in rows:
        value = dig(data, path)
        cells = [label, figure(value, share)]
        if previous is not None:
            before = dig(previous, path)
            cells += [figure(before, share), _change(value, before, share)]
        table.add_row(*cells)
    return table



def _counts(title: str, label: str, counts: dict, previous: dict | None) -> Table:
    table = _table(title, (label, "calls"), previous is not None)
    names = list(counts) + [name for name in (previous or {}) if name not in counts]
    for name in names:
        cells = [name, number(counts.get(name, 0))]
        if previous is not None:
            cells += [number(previous.get(name, 0)), _change(counts.get(name, 0), previous.get(name, 0))]
        table.add_row(*cells)
    return table


def _transfers(transfers: dict) -> Table:
    columns = statuses(transfers)
    table = _table("Transfers by destination and dial status", ["destination", *columns, "total"])
    for destination, counts in transfers["by_destination"].items():
        table.add_row(destination, *(number(counts.get(status, 0)) for status in columns),
                      number(sum(counts.values())))
    return table


def _funnel(states: dict, previous: dict | None) -> Table:
    table = _table("States: calls that entered each one and where they went", (
        "state", "entered", "visits", "went to", "hung up there", "error there"))
    if previous is not None:
        table.add_column("entered before", justify="right")
    for key, entry in states.items():
        cells = [key, number(entry["entered"]), number(entry["visits"]), exits_text(entry["exits"], MAX_EXITS),
                 figure(entry["hangup_share"], True), figure(entry["error_share"], True)]
        if previous is not None:
            cells.append(number(previous[key]["entered"] if key in previous else 0))
        table.add_row(*cells)
    return table


def _inputs(inputs: list[dict]) -> Table:
    table = _table("Menus and gathers", ("input", "tries", "keys chosen", "invalid", "timeout", "failure"))
    for item in inputs:
        table.add_row(input_label(item), number(item["count"]), input_keys_text(item), number(item["invalid"]),
                      number(item["timeout"]), number(item["failure"]))
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
        table.add_row(day, shades, number(sum(row)), f"{busiest:02d}:00" if row[busiest] else "-")
    return table


def _campaign(name: str, campaign: dict, previous: dict | None) -> Table:
    table = _table(f"Campaign {name} (script {campaign['script']})", ("figure", "value"), previous is not None)
    return _figure_rows(table, campaign_figures(campaign), campaign, previous)
