"""Text-to-speech in a separate, reused process (espeak-ng through pyttsx3's binding), killed and restarted when it hangs.

espeak-ng initialises once per process and keeps process-wide state, and
pyttsx3 prints to stdout. Inside a long-running server none of that may touch
the reactor's process, so it runs here instead:

* the parent starts ``python -m autocall.audio.worker`` on first use and keeps it;
* they speak JSON lines: the child says ``{"ready": true}``, then answers each
  ``{"text", "voice", "rate", "out"}`` with ``{"ok": true}`` or ``{"ok": false, "error"}``
  after writing a WAV (22.05 kHz mono 16-bit) to ``out``;
* a render gets ``timeout`` seconds; past that the child is killed and the next
  render starts a fresh one. A render that fails or times out is an AudioError;
* the child runs espeak-ng in its synchronous mode (see ``_Speaker``): a render
  is over when ``espeak_Synth`` returns, with nothing left on another thread;
* the child's real stdout is kept for the protocol and fd 1 points to
  /dev/null, so nothing printed can corrupt it. When the parent goes away,
  the child reads end-of-file and exits.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import select
import subprocess
import sys
import threading
import time
import wave

from autocall.audio.errors import AudioError

RENDER_TIMEOUT_S = 30.0
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def prompt_label(text: str) -> str:
    """How a TTS prompt is named in errors: ``prompt "Thank you for calling..."``."""
    short = " ".join(text.split())
    return f'prompt "{short if len(short) <= 40 else short[:37] + "..."}"'


@functools.lru_cache(maxsize=1)
def engine_version() -> str:
    """espeak-ng's and pyttsx3's versions, part of every TTS cache key (a new engine renders anew)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        pyttsx3_version = version("pyttsx3")
    except PackageNotFoundError:
        pyttsx3_version = "?"
    try:
        from pyttsx3.drivers import _espeak   # loads libespeak-ng; espeak_Info needs no initialisation
        espeak_version = _espeak.Info().decode("ascii", "replace")
    except Exception:   # pyttsx3 raises a bare Exception when the library is missing
        espeak_version = "?"
    return f"espeak-ng {espeak_version}; pyttsx3 {pyttsx3_version}"


class _Stopped(Exception):
    """The child closed its end: it exited or crashed."""


class _TimedOut(Exception):
    """The child did not answer in time."""


class TtsWorker:
    """The parent's handle on the TTS process: thread-safe, one render at a time."""

    def __init__(self, timeout: float = RENDER_TIMEOUT_S, argv: list[str] | None = None) -> None:
        self.timeout = timeout
        self.starts = 0   # processes started so far (a restart after a hang shows here)
        self._argv = argv or [sys.executable, "-m", "autocall.audio.worker"]
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._lock = threading.Lock()

    def render(self, text: str, voice: str, rate: int, out_path: str) -> None:
        """Speak ``text`` into the WAV ``out_path``; AudioError if it fails or takes longer than the timeout."""
        label = prompt_label(text)
        with self._lock:
            try:
                self._ensure_started()
                self._send({"text": text, "voice": voice, "rate": rate, "out": out_path})
                reply = self._receive()
            except _TimedOut:
                self._kill()
                raise AudioError(label, f"text-to-speech did not finish within {self.timeout:g} s; "
                                        f"the worker was restarted, try again") from None
            except _Stopped:
                status = self._kill()
                raise AudioError(label, f"the text-to-speech worker stopped ({status})") from None
        if not reply.get("ok"):
            raise AudioError(label, f"text-to-speech failed: {reply.get('error', 'no reason given')}")

    def close(self) -> None:
        """Stop the process (it finishes the render in progress, if any)."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:
            self._kill()   # died while idle: reap it and start anew
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        try:
            # A session of its own: a Ctrl-C on the terminal interrupts the parent, which stops the child.
            self._proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        except OSError as exc:
            raise AudioError("text-to-speech", f"cannot start the worker process ({exc})") from None
        self.starts += 1
        self._buffer = b""
        try:
            hello = self._receive()
        except (_TimedOut, _Stopped):
            status = self._kill()
            raise AudioError("text-to-speech", f"the worker process did not start ({status})") from None
        if not hello.get("ready"):
            self._kill()
            raise AudioError("text-to-speech", f"cannot start: {hello.get('error', 'no reason given')}")

    def _send(self, message: dict) -> None:
        try:
            self._proc.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise _Stopped from None

    def _receive(self) -> dict:
        deadline = time.monotonic() + self.timeout
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _TimedOut
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise _Stopped
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            return {"ok": False, "error": f"unreadable reply {line[:80]!r}"}

    def _kill(self) -> str:
        """Kill and reap the child; say how it ended."""
        proc, self._proc = self._proc, None
        if proc is None:
            return "not running"
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


# --- the child process -----------------------------------------------------------------

def _serve(requests, replies) -> int:
    """Answer render requests until end of input. Runs in the child."""
    def reply(message: dict) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    try:
        speaker = _Speaker()
    except Exception as exc:   # pyttsx3 signals a missing espeak library with a bare Exception
        reply({"ready": False, "error": f"pyttsx3/espeak-ng unavailable ({exc})"})
        return 1
    reply({"ready": True})
    for line in requests:
        try:
            request = json.loads(line)
            speaker.render(request["text"], request["voice"], int(request["rate"]), request["out"])
        except Exception as exc:   # any failure goes back to the parent as this request's error
            reply({"ok": False, "error": f"{exc.__class__.__name__}: {exc}"})
        else:
            reply({"ok": True})
    return 0


class _Speaker:
    """espeak-ng in its synchronous mode, through pyttsx3's binding: ``Synth`` returns with every sample delivered.

    Not pyttsx3's engine: its espeak driver runs espeak-ng's asynchronous mode, where a
    rate is applied later on espeak's own thread, the first ``runAndWait`` of a process
    returns before anything is spoken, and each ``runAndWait`` asks ``espeak_IsPlaying``
    (which espeak's thread sets for a moment even when idle) whether to cancel: a "yes"
    stays pending in the driver and cancels the next render, whose WAV comes out empty.
    """

    def __init__(self) -> None:
        from pyttsx3.drivers import _espeak
        self._espeak = _espeak
        self.sample_rate = _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 1000)
        if self.sample_rate == -1:
            raise RuntimeError("could not initialise espeak-ng")
        self._chunks: list[bytes] = []
        _espeak.SetSynthCallback(self._collect)

    def _collect(self, samples, count, events) -> int:
        if count > 0:
            self._chunks.append(ctypes.string_at(samples, count * 2))
        return 0   # go on

    def render(self, text: str, voice: str, rate: int, out_path: str) -> None:
        espeak = self._espeak
        if espeak.SetVoiceByName(voice.encode("utf-8")) != espeak.EE_OK:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        espeak.SetParameter(espeak.RATE, rate, 0)
        self._chunks = []
        status = espeak.Synth(text.encode("utf-8"), flags=espeak.ENDPAUSE | espeak.CHARS_UTF8)
        if status != espeak.EE_OK:
            raise ValueError(f"espeak-ng could not speak this text (status {status})")
        audio = b"".join(self._chunks)
        if not audio:
            raise ValueError("espeak-ng produced no audio for this text")
        with wave.open(out_path, "wb") as rendered:
            rendered.setnchannels(1)
            rendered.setsampwidth(2)
            rendered.setframerate(self.sample_rate)
            rendered.writeframes(audio)


def main() -> int:
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)   # pyttsx3's espeak driver prints "Audio saved to ..." on stdout
    return _serve(sys.stdin, replies)


if __name__ == "__main__":
    sys.exit(main())
