"""The report's charts as SVG text, drawn by matplotlib offline (text as paths: the page needs no fonts)."""

from __future__ import annotations

import functools
import io
import warnings

import matplotlib

from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from autocall.report.figures import WEEKDAYS, printable

INK, ACCENT, HANGUP, MUTED = "#1f2933", "#1c7ed6", "#e03131", "#adb5bd"
MAX_BARS = 15
OUTCOME_COLOURS = {"answered": "#2f9e44", "machine": "#7048e8", "busy": "#f08c00", "noanswer": "#adb5bd",
                   "failed": "#e03131", "congestion": "#c2255c", "dnc": "#495057", "unknown": "#868e96"}
_STYLE = {"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasSVG(figure)
    return figure


def _styled(draw):
    """Draw (and save) under the report's matplotlib settings, leaving the global ones alone."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_STYLE), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)        # a glyph missing, a layout squeezed: still drawn
            return draw(*args, **kwargs)
    return wrapper


_THOUSANDS = FuncFormatter(lambda value, _position: f"{value:,.0f}")


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]          # no XML prolog: the SVG goes inside an <img> data URI


def _counts_axis(axis) -> None:
    """Whole numbers with thousands separators (never ``1e6`` in a corner)."""
    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(_THOUSANDS)


@_styled
def bars(counts: dict[str, int], title: str, colour: str = ACCENT) -> str:
    """Horizontal bars, largest first, at most ``MAX_BARS`` (the rest summed as "others")."""
    items = sorted(counts.items(), key=lambda item: -item[1])
    if len(items) > MAX_BARS:
        items = items[:MAX_BARS - 1] + [("others", sum(count for _, count in items[MAX_BARS - 1:]))]
    figure = _figure(7, 0.45 + 0.32 * max(len(items), 1))
    axes = figure.add_subplot()
    labels = [printable(str(label)) for label, _ in reversed(items)]
    values = [count for _, count in reversed(items)]
    axes.barh(labels, values, color=colour)
    for y, value in enumerate(values):
        axes.annotate(f"{value:,}", (value, y), xytext=(3, 0), textcoords="offset points", va="center")
    axes.set_title(title, loc="left")
    axes.set_xlabel("calls")
    _counts_axis(axes.xaxis)
    return _svg(figure)


@_styled
def funnel(states: dict[str, dict], title: str) -> str:
    """Calls entering each state, the part that hung up there in red."""
    items = list(states.items())[:MAX_BARS * 2]
    figure = _figure(7, 0.45 + 0.32 * max(len(items), 1))
    axes = figure.add_subplot()
    labels = [printable(key) for key, _ in reversed(items)]
    entered = [entry["entered"] for _, entry in reversed(items)]
    hung_up = [entry["exits"].get("(hangup)", 0) for _, entry in reversed(items)]
    axes.barh(labels, entered, color=ACCENT, label="entered")
    axes.barh(labels, hung_up, color=HANGUP, label="caller hung up there")
    axes.set_title(title, loc="left")
    axes.set_xlabel("calls")
    _counts_axis(axes.xaxis)
    axes.legend(loc="lower right", frameon=False)
    return _svg(figure)


@_styled
def durations(histogram: list[list[int]], title: str) -> str:
    figure = _figure(7, 2.6)
    axes = figure.add_subplot()
    starts = [start for start, _ in histogram]
    width = (starts[1] - starts[0]) if len(starts) > 1 else 10
    axes.bar(starts, [count for _, count in histogram], width=width * 0.9, align="edge", color=ACCENT)
    axes.set_title(title, loc="left")
    axes.set_xlabel("seconds (the last bar: that long or longer)")
    axes.set_ylabel("calls")
    _counts_axis(axes.yaxis)
    return _svg(figure)


@_styled
def heatmap(by_hour: dict[str, list[int]], title: str) -> str:
    figure = _figure(7, 2.8)
    axes = figure.add_subplot()
    grid = [by_hour[day] for day in WEEKDAYS]
    image = axes.imshow(grid, aspect="auto", cmap="Blues", interpolation="nearest")
    axes.set_yticks(range(7), WEEKDAYS)
    axes.set_xticks(range(0, 24, 2), [f"{hour:02d}" for hour in range(0, 24, 2)])
    axes.set_xlabel("hour")
    axes.set_title(title, loc="left")
    figure.colorbar(image, ax=axes, label="calls")
    return _svg(figure)


@_styled
def outcomes_over_time(over_time: dict[str, dict[str, int]], title: str) -> str:
    """Stacked bars of attempt outcomes per hour or day."""
    labels = [printable(label) for label in over_time]
    outcomes = sorted({outcome for counts in over_time.values() for outcome in counts})
    figure = _figure(7, 2.8)
    axes = figure.add_subplot()
    bottom = [0] * len(labels)
    for outcome in outcomes:
        values = [counts.get(outcome, 0) for counts in over_time.values()]
        axes.bar(range(len(labels)), values, bottom=bottom, label=outcome,
                 color=OUTCOME_COLOURS.get(outcome, MUTED))
        bottom = [b + v for b, v in zip(bottom, values)]
    step = max(1, len(labels) // 8)
    axes.set_xticks(range(0, len(labels), step), labels[::step], rotation=20, ha="right")
    axes.set_ylabel("attempts")
    _counts_axis(axes.yaxis)
    axes.set_title(title, loc="left")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _svg(figure)
