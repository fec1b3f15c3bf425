"""``report --html``: one self-contained page, rendered by a real headless Chromium (Debian's ``chromium``,
which ``make test`` installs): a screenshot that is not blank, no console error, nothing fetched."""

from __future__ import annotations

import io
import re

import pytest
from matplotlib import image

from autocall.cli.main import main
from autocall.store.db import connect
from tests.report.chromium import Chromium, chromium_binary
from tests.report.report_helpers import LINES, simulate_into, utc
from tests.report.test_report_figures import DAY, MIX

needs_chromium = pytest.mark.skipif(chromium_binary() is None,
                                    reason="chromium is not installed (make test installs it)")


@pytest.fixture
def page(tmp_path, compile_text, monkeypatch, capsys):
    """The HTML report of the known mix, with the dialogue's file in the scripts folder."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "lines.dlg").write_text(LINES, encoding="utf-8")
    monkeypatch.setenv("AUTOCALL_DATABASE", str(tmp_path / "calls.db"))
    monkeypatch.setenv("AUTOCALL_SCRIPTS_DIR", str(scripts))
    conn = connect(str(tmp_path / "calls.db"))
    program = compile_text(LINES, "lines.dlg").program
    simulate_into(conn, program, MIX, utc(2026, 3, 2, 10, 0))
    simulate_into(conn, program, [("1", "")] * 3, utc(2026, 3, 1, 10, 0))
    conn.close()

    def write(*extra: str):
        path = tmp_path / "report.html"
        assert main(["report", *DAY, "--compare", "--html", str(path), *extra]) == 0
        capsys.readouterr()
        return path
    return write


def test_the_page_is_self_contained(page):
    html = page().read_text(encoding="utf-8")
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", html)
    assert html.count('src="data:image/svg+xml;base64,') >= 5
    assert 'alt="flow graph of lines"' in html


def test_the_flow_graph_carries_traffic_and_hangup_colour(compile_text):
    from autocall.report.flow import flow_dot, hangup_colour
    program = compile_text(LINES, "lines.dlg").program
    states = {"main": {"state": "main", "entered": 10, "visits": 10, "hangup_share": 0.5,
                       "exits": {"sales": 8, "(hangup)": 2}},
              "sales": {"state": "sales", "entered": 8, "visits": 8, "hangup_share": 0.0, "exits": {"bye": 8}}}
    dot = flow_dot(program, states, "t")
    assert '"main" -> "sales" [label="8 (80%)", penwidth=7.40' in dot
    assert '"main" -> "(hangup)" [label="2 (20%)", penwidth=2.60' in dot
    assert '"(start)" -> "main" [label="10", penwidth=9.00]' in dot          # the busiest arrow, the thickest
    assert f'fillcolor="{hangup_colour(0.5)}"' in dot and hangup_colour(0.5) == "#ff3131"
    assert '"main" -> "account" [label="0"' in dot            # a way no call took, from the IR


def test_without_graphviz_the_page_says_so(page, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    html = page().read_text(encoding="utf-8")
    assert "The flow graph needs Graphviz, which is not installed here" in html


@needs_chromium
def test_chromium_renders_the_page_with_no_console_error(page, tmp_path):
    path = page()
    profile = tmp_path / "profile"
    profile.mkdir()
    with Chromium(str(profile)) as browser:
        visit = browser.visit(path.as_uri())
    (tmp_path / "report.png").write_bytes(visit.screenshot)
    assert visit.errors == []
    assert all(url == path.as_uri() or url.startswith("data:") for url in visit.requests), visit.requests
    pixels = image.imread(io.BytesIO(visit.screenshot))[:, :, :3]
    assert pixels.shape[:2] == (2400, 1280)
    ink = (pixels.min(axis=2) < 0.9).mean()
    blue = ((pixels[:, :, 2] > 0.7) & (pixels[:, :, 0] < 0.3)).mean()      # the charts' bars, the graph's arrows
    assert ink > 0.03 and blue > 0.005, (ink, blue)


@needs_chromium
def test_the_browser_check_catches_console_errors_and_failed_loads(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><p>x</p><script>console.error("broken")</script>'
                   '<img src="missing.png"></body></html>', encoding="utf-8")
    profile = tmp_path / "profile"
    profile.mkdir()
    with Chromium(str(profile), height=600) as browser:
        visit = browser.visit(bad.as_uri())
    assert "console.error: broken" in visit.errors
    assert any("ERR_FILE_NOT_FOUND" in error for error in visit.errors)
    pixels = image.imread(io.BytesIO(visit.screenshot))[:, :, :3]
    assert (pixels.min(axis=2) < 0.9).mean() < 0.01               # a nearly blank page is seen as such
