"""A real headless Chromium driven over the DevTools protocol (``--remote-debugging-pipe``: JSON messages
ended by NUL on file descriptors 3 and 4, no WebSocket needed): open a page, collect what its console and
the browser log say, take a screenshot."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-pipe",
         "--hide-scrollbars", "--mute-audio"]


def chromium_binary() -> str | None:
    return shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium") or None


@dataclass
class PageVisit:
    screenshot: bytes
    console: list[dict] = field(default_factory=list)       # every console call and uncaught exception
    log: list[dict] = field(default_factory=list)           # the browser's log (failed loads, CSP, ...)
    requests: list[str] = field(default_factory=list)       # every URL the page asked for

    @property
    def errors(self) -> list[str]:
        found = [f"console.{entry['type']}: {entry['text']}" for entry in self.console
                 if entry["type"] in ("error", "assert", "exception")]
        found += [f"log {entry['level']}: {entry['text']}" for entry in self.log if entry["level"] == "error"]
        return found


class Chromium:
    """One browser process; ``visit(url)`` opens a page in a fresh tab. Use as a context manager."""

    def __init__(self, user_data_dir: str, width: int = 1280, height: int = 2400, timeout_s: float = 60.0) -> None:
        binary = chromium_binary()
        if binary is None:
            raise RuntimeError("chromium is not installed")
        self.width, self.height, self.timeout_s = width, height, timeout_s
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds() -> None:         # the pipe's ends at descriptors 3 and 4 in the child (one may be 3 already)
            read, write = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"], preexec_fn=fds, close_fds=False,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._send("Browser.close")
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)

    # --- the protocol -----------------------------------------------------------------------------
    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    def wait_for(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + self.timeout_s
        for index, event in enumerate(self._events):
            if event.get("method") == method and event.get("sessionId") == session:
                return self._events.pop(index)
        while True:
            message = self._receive(deadline)
            if message.get("method") == method and message.get("sessionId") == session:
                return message
            self._events.append(message)

    # --- a visit ----------------------------------------------------------------------------------
    def visit(self, url: str, settle_s: float = 0.5) -> PageVisit:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                          "deviceScaleFactor": 1, "mobile": False}, session)
        self._events.clear()
        self.call("Page.navigate", {"url": url}, session)
        self.wait_for("Page.loadEventFired", session)
        time.sleep(settle_s)          # a real browser, not a Clock: late console messages arrive meanwhile
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session)
        visit = PageVisit(base64.b64decode(shot["data"]))
        for event in self._events:
            if event.get("sessionId") != session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"])
                visit.console.append({"type": params["type"], "text": text})
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                visit.console.append({"type": "exception", "text": details.get("exception", {}).get(
                    "description", details.get("text", ""))})
            elif method == "Log.entryAdded":
                visit.log.append({"level": params["entry"]["level"], "text": params["entry"]["text"]})
            elif method == "Network.requestWillBeSent":
                visit.requests.append(params["request"]["url"])
        self.call("Target.closeTarget", {"targetId": target})
        return visit
