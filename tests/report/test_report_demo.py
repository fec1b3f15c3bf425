"""``make demo`` ends with the report of the demo's calls: tables on the terminal and the page's path."""

from __future__ import annotations

import io
import sys

from autocall.cli.main import main


def test_the_demo_ends_with_the_report_and_says_where_the_page_is(tmp_path, monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["demo", "--workdir", str(tmp_path), "--no-campaign"]) == 0
    text = out.getvalue()
    page = tmp_path / "report.html"
    assert "The report: what happened on the lines" in text
    assert f"the report as a page, charts and the flow graphs with their traffic: {page}" in text
    assert "States: calls that entered each one" in text and "ask_pin gather pin" in text
    assert "fetch     crm /accounts/5550100 -> 200" in text and "send      crm /accounts/7/pin-checks -> 200" in text
    html = page.read_text(encoding="utf-8")
    assert "What happened on the lines" in html and 'alt="flow graph of support"' in html
