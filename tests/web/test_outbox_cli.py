"""``autocall outbox``: counts and rows, --failed, --retry ID, --json; and the commands that deliver refuse a
service whose env:NAME secret is not set."""

from __future__ import annotations

import json

from autocall.cli.main import main
from autocall.store import outbox as store
from autocall.store.db import connect, transaction


def _setup(tmp_path):
    database = tmp_path / "autocall.db"
    (tmp_path / "autocall.toml").write_text(f'database = "{database}"\n', encoding="utf-8")
    conn = connect(str(database))
    with transaction(conn):
        ids = [store.enqueue(conn, kind="notify", service="crm", path=f"/e/{i}", body={"i": i},
                             ordering_key=f"call:{i}", call_id=str(i), now=1000.0 + i) for i in range(3)]
        store.claim_due(conn, "w", 2000.0, 10, 60)
        store.mark_delivered(conn, ids[0], "w", 200, 2000.0)
        store.mark_failed(conn, ids[1], "w", 422, "HTTP 422", 2000.0)
    return conn, ids, ["--config", str(tmp_path / "autocall.toml")]


def test_listing_failed_and_retry(tmp_path, capsys):
    conn, ids, config = _setup(tmp_path)
    assert main(["outbox", *config]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "1 pending, 1 delivered, 1 failed"
    assert "HTTP 422" in out and "/e/2" in out and "not yet" in out.replace("not tried yet", "not yet")
    assert main(["outbox", "--failed", *config]) == 0
    failed = capsys.readouterr().out.splitlines()[2:]
    assert len(failed) == 1 and failed[0].split()[:3] == [str(ids[1]), "failed", "notify"]
    assert main(["outbox", "--json", *config]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["status"] for row in rows] == ["pending", "failed", "delivered"] and rows[1]["body"] == {"i": 1}
    assert main(["outbox", "--retry", str(ids[1]), *config]) == 0
    assert "queued again" in capsys.readouterr().out
    assert store.row_by_id(conn, ids[1])["status"] == "pending"
    assert main(["outbox", "--retry", "999", *config]) == 1
    assert capsys.readouterr().err == "autocall: error: --retry 999: no delivery with that id; autocall outbox lists them\n"


def test_serve_refuses_a_service_whose_secret_is_not_in_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NOT_SET_TOKEN", raising=False)
    (tmp_path / "autocall.toml").write_text(
        '[services.crm]\nurl = "http://127.0.0.1:1"\nheaders = { Authorization = "env:NOT_SET_TOKEN" }\n',
        encoding="utf-8")
    assert main(["serve", "--scripts", str(tmp_path), "--port", "0", "--config", str(tmp_path / "autocall.toml")]) == 1
    assert capsys.readouterr().err == ("autocall: error: [services.crm] headers.Authorization = env:NOT_SET_TOKEN, "
                                       "but NOT_SET_TOKEN is not set; export it before starting AutoCall\n")
