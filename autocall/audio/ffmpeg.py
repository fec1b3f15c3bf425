"""Running ffmpeg: one call with a time limit, its absence or failure turned into an AudioError naming the file."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

from autocall.audio.errors import AudioError

# "[mp3float @ 0x55d1c3] [error] Header missing" -> "Header missing"
_LOG_PREFIX = re.compile(r"^(\[[^\]]*\]\s*)+")


@functools.lru_cache(maxsize=1)
def ffmpeg_path() -> str | None:
    """Where ffmpeg is (looked up once per process), or None."""
    return shutil.which("ffmpeg")


def run_ffmpeg(args: list[str], *, file: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``ffmpeg -nostdin -hide_banner ARGS``; stdout and stderr are captured as text."""
    executable = ffmpeg_path()
    if executable is None:
        raise AudioError(file, "cannot be processed: ffmpeg is not installed (apt-get install ffmpeg)")
    try:
        return subprocess.run([executable, "-nostdin", "-hide_banner", *args], capture_output=True,
                              text=True, errors="replace", timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise AudioError(file, f"ffmpeg did not finish within {timeout:g} s; is the file damaged?") from None


def log_message(line: str) -> str:
    """An ffmpeg log line without its ``[component @ address] [level]`` prefixes."""
    return _LOG_PREFIX.sub("", line.strip()).strip()


def failure_reason(stderr: str) -> str:
    """The most telling line of a failed run: the last non-empty one, shortened."""
    lines = [log_message(line) for line in stderr.splitlines() if line.strip()]
    reason = lines[-1] if lines else "no message"
    return reason if len(reason) <= 160 else reason[:157] + "..."
