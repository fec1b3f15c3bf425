"""A real HTTP service on 127.0.0.1 in a thread (the standard library's server), with every fault on call.

``routes`` maps a path (without the query) to a behaviour: ``("json", status, value)``,
``("body", status, bytes, content_type)``, ``("slow", seconds)``, ``("huge", bytes)``,
``("redirect", location)``, ``("cut",)`` (closes mid-body), ``("close",)`` (closes with no reply),
``("sequence", [behaviour, ...])`` (one after the other, the last repeated).
Every request is kept in ``requests`` (method, path, headers, body).
"""

from __future__ import annotations

import json
import threading

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HttpService:
    def __init__(self, http10: bool = False) -> None:
        self.routes: dict[str, tuple] = {}
        self.requests: list[dict] = []
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0" if http10 else "HTTP/1.1"   # 1.0: closes after each reply

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                service._handle(self)

            do_POST = do_GET

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass           # the client hung up on a slow or huge reply: that is the test

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> "HttpService":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests.append({"method": handler.command, "path": handler.path, "headers": handler.headers,
                                  "body": body})
            behaviour = self.routes.get(path, ("json", 404, {"error": "no such path"}))
            if behaviour[0] == "sequence":
                count = self._counts.get(path, 0)
                self._counts[path] = count + 1
                steps = behaviour[1]
                behaviour = steps[min(count, len(steps) - 1)]
        kind = behaviour[0]
        if kind == "json":
            self._send(handler, behaviour[1], json.dumps(behaviour[2]).encode(), "application/json")
        elif kind == "body":
            self._send(handler, behaviour[1], behaviour[2], behaviour[3])
        elif kind == "slow":
            self._release.wait(behaviour[1])
            self._send(handler, 200, b'{"late": true}', "application/json")
        elif kind == "huge":
            size = behaviour[1]
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(size))
            handler.end_headers()
            chunk = b" " * 65536
            try:
                sent = 0
                while sent < size:
                    handler.wfile.write(chunk[:size - sent])
                    sent += len(chunk)
            except OSError:
                pass
        elif kind == "chunked_huge":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            chunk = b" " * 65536
            try:
                for _ in range(behaviour[1] // len(chunk)):
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                handler.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
        elif kind == "redirect":
            handler.send_response(302)
            handler.send_header("Location", behaviour[1])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif kind == "cut":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "1000")
            handler.end_headers()
            handler.wfile.write(b'{"name": "An')
            handler.wfile.flush()
            handler.close_connection = True
        elif kind == "close":
            handler.close_connection = True
        else:
            raise AssertionError(kind)

    @staticmethod
    def _send(handler, status: int, body: bytes, content_type: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def free_port() -> int:
    """A port nothing listens on (bound and released)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


