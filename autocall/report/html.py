"""A report as one self-contained HTML page: figures, matplotlib charts and the flow graph of each dialogue
with its traffic, every image inline (data URIs), no script and nothing fetched when it is viewed."""

from __future__ import annotations

import base64
from html import escape

from autocall.errors import UserError
from autocall.report import charts
from autocall.report.cells import (campaign_figures, dig, exits_text, figure, input_keys_text, input_label,
                                   number, statuses)
from autocall.report.flow import flow_dot

GRAPHVIZ_MISSING = ("The flow graph needs Graphviz, which is not installed here: install it "
                    "(apt-get install graphviz) and write the report again. The table of states below has "
                    "the same figures.")
CSS = """
body { font-family: Helvetica, Arial, sans-serif; color: #1f2933; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #dee2e6; padding-bottom: .3rem; }
.period { color: #52606d; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.card { border: 1px solid #dee2e6; border-radius: 8px; padding: .6rem 1rem; min-width: 9rem; }
.card b { display: block; font-size: 1.5rem; } .card span { color: #52606d; font-size: .85rem; }
.card i { display: block; font-style: normal; font-size: .8rem; }
.up { color: #2b8a3e; } .down { color: #c92a2a; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #e9ecef; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f1f3f5; }
.note { background: #fff4e6; border-left: 4px solid #f08c00; padding: .6rem 1rem; }
img.chart { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
.graph { overflow-x: auto; border: 1px solid #e9ecef; border-radius: 8px; padding: .5rem; }
.legend { color: #52606d; font-size: .85rem; }
"""


def write_page(path: str, report: dict, programs: dict) -> None:
    """Write the page of ``report``; ``programs`` maps each script to its compiled dialogue or to why there
    is none (a message shown instead of its graph)."""
    page = render_page(report, programs)
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(page)
    except OSError as exc:
        raise UserError(f"--html {path}: cannot write ({exc.strerror}); check the folder is writable") from None


def render_page(report: dict, programs: dict) -> str:
    previous = report.get("previous")
    period = report["period"]
    title = "Calls from {} to {}".format(_when(period["since"]), _when(period["until"]))
    scope = "".join(f", {name} {escape(period[name])}" for name in ("script", "campaign") if period[name])
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             f"<title>AutoCall report: {escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>What happened on the lines</h1><p class=\"period\">{escape(title)}{scope}"
             + (f"; compared with {_when(previous['period']['since'])} to {_when(previous['period']['until'])}"
                if previous else "") + "</p>"]
    missing = report.get("not_recorded")
    if missing:
        parts.append(f"<p class=\"note\">{missing['calls']:,} of these calls were recorded before AutoCall kept "
                     f"the details reports need; for them this report cannot give: "
                     f"{escape('; '.join(missing['figures']))}.</p>")
    parts.append(_cards(report, previous))
    if report["calls"]:
        parts.append("<h2>Results and durations</h2>")
        if report["results"]:
            parts.append(_image(charts.bars(report["results"], "Results (the script's result)"), "results chart"))
        parts.append(_image(charts.durations(report["duration_s"]["histogram"], "Call durations"),
                     "durations chart"))
        parts.append(_counts_table("result", report["results"], previous and previous["results"]))
        parts.append("<h2>Where callers go</h2>")
        for script in report["scripts"]:
            parts.append(_flow(script, report, programs.get(script)))
        parts.append(_image(charts.funnel(report["states"], "Calls entering each state"), "funnel chart"))
        parts.append(_states_table(report["states"], previous and previous["states"]))
        if report["inputs"]:
            parts.append("<h2>What callers press</h2>" + _inputs_table(report["inputs"]))
        if report["transfers"]["total"]:
            parts.append("<h2>Transfers</h2>" + _transfers_table(report["transfers"]))
        parts.append("<h2>When they call</h2>")
        parts.append(_image(charts.heatmap(report["by_hour"], "Calls by weekday and hour"), "heatmap"))
    else:
        parts.append("<p>No calls in this period.</p>")
    for name, campaign in report["campaigns"].items():
        parts.append(f"<h2>Campaign {escape(name)}</h2>")
        if campaign["over_time"]:
            parts.append(_image(charts.outcomes_over_time(campaign["over_time"], "Attempt outcomes over time"),
                                "campaign outcomes chart"))
        parts.append(_campaign_table(campaign, previous and previous["campaigns"].get(name)))
    parts.append("<p class=\"legend\">Written by autocall report. Durations in seconds; shares of the calls "
                 "in the period.</p></body></html>\n")
    return "\n".join(parts)


def _when(iso: str) -> str:
    return escape(iso[:16].replace("T", " "))


def _image(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img class="chart" alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">'




def _change(now, before, percent: bool = False) -> str:
    if now is None or before is None or now == before:
        return ""
    delta = now - before
    text = f"{delta * 100:+.1f} pt" if percent else (f"{delta:+,.1f}" if isinstance(delta, float)
                                                      else f"{delta:+,}")
    return f'<i class="{"up" if delta > 0 else "down"}">{text} vs previous</i>'


def _cards(report: dict, previous: dict | None) -> str:
    cards = [("calls", ("calls",), False), ("contained", ("containment", "share"), True),
             ("caller hung up", ("ended_by", "caller_hangup"), False), ("errors", ("ended_by", "error"), False),
             ("average duration (s)", ("duration_s", "average"), False),
             ("median duration (s)", ("duration_s", "median"), False),
             ("90th percentile (s)", ("duration_s", "p90"), False),
             ("transfers answered", ("transfers", "answered"), False)]
    html = ['<div class="cards">']
    for label, path, share in cards:
        value = dig(report, path)
        change = _change(value, dig(previous, path), share) if previous else ""
        html.append(f'<div class="card"><b>{figure(value, share)}</b>'
                    f"<span>{escape(label)}</span>{change}</div>")
    html.append("</div>")
    return "".join(html)



def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _counts_table(label: str, counts: dict, previous: dict | None) -> str:
    headers = [label, "calls"] + (["previous"] if previous is not None else [])
    names = list(counts) + [name for name in (previous or {}) if name not in counts]
    rows = [[escape(str(name)), number(counts.get(name, 0))]
            + ([number(previous.get(name, 0))] if previous is not None else []) for name in names]
    return _table(headers, rows)


def _flow(script: str, report: dict, program) -> str:
    states = {key: entry for key, entry in report["states"].items() if entry["script"] == script}
    heading = f"<h3>{escape(script)}</h3>"
    if program is None or isinstance(program, str):
        return heading + f'<p class="note">No flow graph: {escape(program or "the script was not found")}.</p>'
    from autocall.graph import render_image

    try:
        svg = render_image(flow_dot(program, states, f"{script}: calls through each state"), "svg").decode("utf-8")
    except UserError:
        return heading + f'<p class="note">{escape(GRAPHVIZ_MISSING)}</p>'
    svg = svg[svg.index("<svg"):]
    return (heading + f'<div class="graph">{_image(svg, f"flow graph of {script}")}</div>'
            '<p class="legend">Each arrow: the calls that went that way (and their share of the state\'s '
            "visits), thicker for more. Each state: the redder, the larger the share of its callers who hung "
            "up there. Grey dashed arrows: ways no call took.</p>")


def _states_table(states: dict, previous: dict | None) -> str:
    rows = []
    for key, entry in states.items():
        row = [escape(key), number(entry["entered"]), number(entry["visits"]), escape(exits_text(entry["exits"])),
               figure(entry["hangup_share"], True), figure(entry["error_share"], True)]
        if previous is not None:
            row.append(number(previous[key]["entered"] if key in previous else 0))
        rows.append(row)
    headers = ["state", "entered", "visits", "went to", "hung up there", "error there"]
    return _table(headers + (["entered before"] if previous is not None else []), rows)


def _inputs_table(inputs: list[dict]) -> str:
    rows = [[escape(input_label(item)), number(item["count"]), escape(input_keys_text(item)), number(item["invalid"]),
             number(item["timeout"]), number(item["failure"])] for item in inputs]
    return _table(["input", "tries", "keys chosen", "invalid", "timeout", "failure"], rows)


def _transfers_table(transfers: dict) -> str:
    columns = statuses(transfers)
    rows = [[escape(destination)] + [number(counts.get(status, 0)) for status in columns]
            + [number(sum(counts.values()))] for destination, counts in transfers["by_destination"].items()]
    return _table(["destination", *columns, "total"], rows)


def _campaign_table(campaign: dict, previous: dict | None) -> str:
    rows = [["script", escape(campaign["script"])] + ([escape(previous["script"])] if previous is not None else [])]
    for label, path, share in campaign_figures(campaign):
        row = [escape(label), figure(dig(campaign, path), share)]
        if previous is not None:
            row.append(figure(dig(previous, path), share))
        rows.append(row)
    return _table(["figure", "value"] + (["previous"] if previous is not None else []), rows)
