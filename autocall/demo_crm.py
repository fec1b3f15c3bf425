"""The demo's sample CRM: a small HTTP service on 127.0.0.1 that the demo's scripts look callers up in.

``make demo`` starts it in a thread: ``support.dlg`` fetches the caller's
account and has the PIN checked there, the reminder campaign sends its
confirmations there, and the campaign's ``attempt_ended`` events are
delivered to it. It keeps what it received, for the demo to show; it never
keeps a PIN.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNTS = {"5550100": {"id": 7, "name": "Ada Lovelace", "balance": 42}}
PINS = {7: "1234"}
EVENTS_PATH = "/api/autocall/attempts"


class SampleCrm:
    """``start()``, then ``url`` (``http://127.0.0.1:PORT/api``); ``received`` lists (method, path) in order,
    ``events`` the event bodies delivered; ``stop()``."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self.events: list[dict] = []
        self._lock = threading.Lock()
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                crm._answer(self)

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> "SampleCrm":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        try:
            body = json.loads(handler.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.received.append((handler.command, path))
            if path == EVENTS_PATH:
                self.events.append(body)
        status, reply = self._route(handler.command, path, body)
        data = json.dumps(reply).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _route(method: str, path: str, body: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if method == "GET" and parts[:2] == ["api", "accounts"] and len(parts) == 3:
            account = ACCOUNTS.get(parts[2])
            return (200, account) if account else (404, {"error": "no such account"})
        if method == "POST" and parts[:2] == ["api", "accounts"] and parts[3:] == ["pin-checks"]:
            wanted = PINS.get(int(parts[2])) if parts[2].isdigit() else None
            return 200, {"valid": wanted is not None and body.get("pin") == wanted}
        if method == "POST" and path in ("/api/confirmations", EVENTS_PATH):
            return 200, {"ok": True}
        return 404, {"error": "no such path"}
