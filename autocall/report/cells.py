"""A report's figures as text, the same on the terminal and on the HTML page."""

from __future__ import annotations

# (label, path in the report or a campaign's entry, whether it is a share)
TOTALS = [("calls", ("calls",), False),
          ("ended by hangup", ("ended_by", "hangup"), False),
          ("ended by caller_hangup", ("ended_by", "caller_hangup"), False),
          ("ended by error", ("ended_by", "error"), False),
          ("duration average (s)", ("duration_s", "average"), False),
          ("duration median (s)", ("duration_s", "median"), False),
          ("duration 90th percentile (s)", ("duration_s", "p90"), False),
          ("transfers", ("transfers", "total"), False),
          ("transfers answered", ("transfers", "answered"), False),
          ("contained", ("containment", "contained"), False),
          ("containment", ("containment", "share"), True)]


def campaign_figures(campaign: dict) -> list[tuple[str, tuple, bool]]:
    return ([("contacts in the list", ("contacts",), False), ("contacts called", ("contacts_tried",), False),
             ("attempts", ("attempts",), False), ("attempts per contact", ("attempts_per_contact",), False),
             ("answer rate", ("answer_rate",), True), ("machine rate", ("machine_rate",), True),
             ("average talk time (s)", ("average_talk_s",), False)]
            + [(f"outcome {outcome}", ("outcomes", outcome), False) for outcome in campaign["outcomes"]]
            + [(f"result {result}", ("results", result), False) for result in campaign["results"]])


def dig(data, path: tuple):
    """``data[path[0]][path[1]]...``, None where a key is missing (a figure absent from the other period)."""
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def number(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def percent(value) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def figure(value, share: bool) -> str:
    return percent(value) if share else number(value)


def exits_text(exits: dict[str, int], limit: int | None = None) -> str:
    """``sales 402, account 371, (hangup) 94``, the first ``limit`` and how many more."""
    items = list(exits.items())
    shown = ", ".join(f"{target} {count:,}" for target, count in items[:limit])
    if limit is not None and len(items) > limit:
        shown += f", {len(items) - limit} more"
    return shown


def input_label(item: dict) -> str:
    return f"{item['state']} {item['op']}" + (f" {item['name']}" if item["name"] else "")


def input_keys_text(item: dict) -> str:
    """The keys chosen and how often; for a secret gather only how its tries ended."""
    if item["secret"]:
        return "secret: " + ", ".join(f"{outcome} {count:,}" for outcome, count in item["outcomes"].items())
    keys = ", ".join(f"{key} {count:,}" for key, count in item["keys"].items()) or "-"
    if item["other_keys"]:
        keys += f", others {item['other_keys']:,}"
    return keys


def statuses(transfers: dict) -> list[str]:
    """The dial statuses seen, the columns of the transfers table."""
    return sorted({status for counts in transfers["by_destination"].values() for status in counts})
