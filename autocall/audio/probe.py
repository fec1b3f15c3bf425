"""What an audio file is, judged by its content (magic bytes, headers, one ffmpeg decode for MP3), and the prompt-file rules.

WAV files are read from their header alone (no process is started), so that
``autocall check`` stays fast; MP3 files are decoded once by ffmpeg, which
is the only way to know they play and how long they last. Results are
remembered per process for an unchanged file (same size, mtime and inode).
"""

from __future__ import annotations

import functools
import math
import os
import re
import struct
from dataclasses import dataclass, replace

from autocall.audio.errors import AudioError
from autocall.audio.ffmpeg import log_message, run_ffmpeg

MAX_PROMPT_BYTES = 5 * 1024 * 1024
MAX_PROMPT_SECONDS = 600
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000    # what a WAV header may claim and still be audio
GOOD_SAMPLE_RATE = 16_000  # below this a prompt is accepted with a warning
DECODE_TIMEOUT_S = 120.0

_HEAD_BYTES = 64 * 1024
_MAX_WAV_CHUNKS = 1000

# WAVE format tags: those decoded by reading the header alone, and names for the others.
_PLAIN_WAV_ENCODINGS = {1: "pcm", 3: "float", 6: "a-law", 7: "mu-law"}
_OTHER_WAV_ENCODINGS = {2: "ms-adpcm", 0x11: "ima-adpcm", 0x31: "gsm", 0x50: "mpeg", 0x55: "mp3"}
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# MPEG audio frame header tables (ISO 11172-3 / 13818-3), layer III.
_MPEG_VERSIONS = {0: "2.5", 2: "2", 3: "1"}
_MPEG_RATES = {"1": (44100, 48000, 32000), "2": (22050, 24000, 16000), "2.5": (11025, 12000, 8000)}
_L3_BITRATES = {
    "1": (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    "2": (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_LAYERS = {1: "III", 2: "II", 3: "I"}

# Other content, named so the user knows what they uploaded: (offset, magic, format, description).
_MAGIC = [
    (0, b"OggS", "ogg", "it looks like an Ogg file (Vorbis or Opus)"),
    (0, b"fLaC", "flac", "it looks like a FLAC file"),
    (8, b"AIFF", "aiff", "it looks like an AIFF file"),
    (8, b"AIFC", "aiff", "it looks like an AIFF-C file"),
    (4, b"ftyp", "mp4", "it looks like an MP4/M4A file (AAC)"),
    (0, b"\x1a\x45\xdf\xa3", "matroska", "it looks like a Matroska/WebM file"),
    (0, b"#!AMR", "amr", "it looks like an AMR file"),
    (0, b".snd", "au", "it looks like a Sun/NeXT .au file"),
    (0, b"caff", "caf", "it looks like a Core Audio (CAF) file"),
    (0, b"wvpk", "wavpack", "it looks like a WavPack file"),
    (0, b"MAC ", "ape", "it looks like a Monkey's Audio (APE) file"),
    (0, b"MThd", "midi", "it is a MIDI file, not recorded audio"),
    (0, b"RIFX", "rifx", "it is a big-endian (RIFX) WAV, which is not supported"),
    (0, b"RF64", "rf64", "it is an RF64 (64-bit) WAV, which is not supported"),
    (0, b"%PDF", "pdf", "it is a PDF document, not audio"),
    (0, b"PK\x03\x04", "zip", "it is a ZIP archive, not audio"),
    (0, b"\x89PNG", "png", "it is a PNG image, not audio"),
    (0, b"\xff\xd8\xff", "jpeg", "it is a JPEG image, not audio"),
    (0, b"GIF8", "gif", "it is a GIF image, not audio"),
    (0, b"\x1f\x8b", "gzip", "it is a gzip archive, not audio"),
]
# Content no converter can turn into a prompt.
NOT_AUDIO = frozenset({"empty", "text", "pdf", "zip", "png", "jpeg", "gif", "gzip", "midi", "id3", "unknown"})


@dataclass(frozen=True)
class AudioInfo:
    """Facts about a file. Fields it does not have (an Ogg file's rate, an MP3's sample width) are None."""

    format: str                  # 'mp3', 'wav', or what it is instead: 'ogg', 'flac', 'text', 'empty', 'unknown', ...
    sample_rate: int | None
    channels: int | None
    sample_width: int | None     # bytes per sample; None for compressed audio (MP3, ADPCM WAV)
    duration_s: float | None
    size_bytes: int
    encoding: str = ""           # 'pcm', 'float', 'mu-law', 'MPEG-1 layer III', ...
    description: str = ""        # for content that is not MP3/WAV: what it looks like
    problem: str | None = None   # a defect found while reading: damaged header, truncated, undecodable
    decode_note: str | None = None  # errors the decoder reported on a file that still decoded


@dataclass(frozen=True)
class Verdict:
    """Whether a file may be a prompt: ``error`` (problem text) or None, and warnings."""

    error: str | None
    warnings: tuple[str, ...] = ()


def inspect_audio(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the facts of ``path`` from its content; raise AudioError only if it cannot be read at all."""
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise AudioError(name, "file not found") from None
    except OSError as exc:
        raise AudioError(name, f"cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    if not os.path.isfile(name):
        raise AudioError(name, "not a regular file")
    try:
        return _inspect(os.path.abspath(name), st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError as exc:
        raise AudioError(name, f"cannot be read ({exc.strerror or exc.__class__.__name__})") from None


def assess(info: AudioInfo) -> Verdict:
    """The prompt-file rules applied to the facts: MP3 or WAV, size, decodable, duration, sample rate."""
    if info.format == "empty":
        return Verdict("empty file (0 bytes); upload the audio again")
    if info.format not in ("mp3", "wav"):
        if info.format in NOT_AUDIO:
            return Verdict(f"not MP3 or WAV: {info.description}")
        return Verdict(f"not MP3 or WAV: {info.description}; convert it to WAV or MP3 "
                       f"(autocall audio convert can)")
    if info.size_bytes > MAX_PROMPT_BYTES:
        return Verdict(f"too large: {_megabytes(info.size_bytes)}, the limit for prompt files is "
                       f"{_megabytes(MAX_PROMPT_BYTES)}; shorten it or save it as MP3")
    if info.problem:
        return Verdict(info.problem)
    if info.duration_s is not None and info.duration_s > MAX_PROMPT_SECONDS:
        return Verdict(f"too long: {format_seconds(math.ceil(info.duration_s))}, the limit for prompts is "
                       f"{format_seconds(MAX_PROMPT_SECONDS)}; shorten it")
    if not info.duration_s:
        return Verdict("holds no audio (0 s); upload the audio again")
    return Verdict(None, tuple(quality_warnings(info)))


def quality_warnings(info: AudioInfo) -> list[str]:
    """What is acceptable but worth knowing: a low sample rate, decoder complaints."""
    warnings = []
    if info.sample_rate and info.sample_rate < GOOD_SAMPLE_RATE:
        warnings.append(f"sampled at {info.sample_rate} Hz, below 16 kHz: quality will be limited")
    if info.decode_note:
        warnings.append(f"decoded with errors ({info.decode_note}); listen to it to check")
    return warnings


def validate_prompt_file(path: str | os.PathLike[str]) -> list[str]:
    """Return the warnings for a prompt file, or raise AudioError saying what is wrong and the limit."""
    verdict = assess(inspect_audio(path))
    if verdict.error:
        raise AudioError(os.fspath(path), verdict.error)
    return list(verdict.warnings)


def format_seconds(seconds: float) -> str:
    """``2.5 s``, ``45 s``, ``10 min``, ``12 min 30 s``: how durations read in messages."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min" + (f" {rest} s" if rest else "")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


@functools.lru_cache(maxsize=256)
def _inspect(path: str, size: int, mtime_ns: int, inode: int) -> AudioInfo:
    # size, mtime and inode are only the cache key: a changed file is read again.
    if size == 0:
        return AudioInfo("empty", None, None, None, None, 0, description="it is empty")
    with open(path, "rb") as stream:
        head = stream.read(_HEAD_BYTES)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            return _inspect_wav(stream, path, size)
        if head[:4] == b"RIFF":
            form = head[8:12].decode("latin-1").strip() or "?"
            return _other(f"riff-{form.lower()}", f"it is a RIFF '{form}' file, not WAVE audio", size)
        frame_at = _find_mp3_frames(stream, head, size)
        if frame_at is not None:
            return _inspect_mp3(path, _read_at(stream, frame_at, 4), size)
    fmt, description = _identify(head)
    return _other(fmt, description, size)


def _other(fmt: str, description: str, size: int) -> AudioInfo:
    return AudioInfo(fmt, None, None, None, None, size, description=description)


def _read_at(stream, offset: int, count: int) -> bytes:
    stream.seek(offset)
    return stream.read(count)


def _identify(head: bytes) -> tuple[str, str]:
    """Name what a file is when it is neither WAV nor MP3."""
    for offset, magic, fmt, description in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return fmt, description
    if head[:3] == b"ID3":
        return "id3", "it has an MP3 tag (ID3) but no MP3 audio after it"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "aac", "it looks like an AAC (ADTS) file"
    header = _mpeg_header(head[:4])
    if header is not None and header["layer"] != "III":
        return f"mp{len(header['layer'])}", (
            f"it is MPEG audio layer {header['layer']}, not layer III (MP3)")
    if _looks_like_text(head):
        return "text", "it is a text file, not audio"
    return "unknown", "its content is not audio in any format AutoCall recognises"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:   # a character cut by the read size is fine
            return False
        text = head[:exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
    return printable >= 0.95 * max(len(text), 1)


# --- WAV ---------------------------------------------------------------------------

def _inspect_wav(stream, path: str, size: int) -> AudioInfo:
    fmt_chunk = data_offset = data_size = None
    pos = 12
    for _ in range(_MAX_WAV_CHUNKS):
        if pos + 8 > size:
            break
        chunk_id, chunk_size = struct.unpack("<4sI", _read_at(stream, pos, 8))
        if chunk_id == b"fmt ":
            fmt_chunk = stream.read(min(chunk_size, 64))
        elif chunk_id == b"data":
            data_offset, data_size = pos + 8, chunk_size
            break
        pos += 8 + chunk_size + (chunk_size & 1)
    if fmt_chunk is None or len(fmt_chunk) < 16:
        return AudioInfo("wav", None, None, None, None, size,
                         problem="damaged WAV header: no format ('fmt ') chunk before the audio; "
                                 "re-export it as WAV or MP3")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", fmt_chunk[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt_chunk) >= 26:
        tag = struct.unpack("<H", fmt_chunk[24:26])[0]   # the sub-format GUID begins with the format tag
    encoding = _PLAIN_WAV_ENCODINGS.get(tag) or _OTHER_WAV_ENCODINGS.get(tag, f"format 0x{tag:04x}")
    plain = tag in _PLAIN_WAV_ENCODINGS
    info = AudioInfo("wav", rate or None, channels or None, (bits + 7) // 8 if plain and bits else None,
                     None, size, encoding=encoding)
    if not channels or not rate or not block_align or (plain and not bits):
        return replace(info, problem="damaged WAV header: zero channels, sample rate or block size; "
                                      "re-export it as WAV or MP3")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        return replace(info, problem=f"damaged WAV header: a sample rate of {rate:,} Hz is not a real one "
                                     f"({MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz); re-export it as WAV or MP3")
    if plain and block_align != channels * info.sample_width:
        return replace(info, problem=f"damaged WAV header: {block_align}-byte frames do not fit {channels} "
                                     f"channel(s) of {bits}-bit samples; re-export it as WAV or MP3")
    if data_offset is None:
        return replace(info, problem="damaged WAV file: no audio ('data') chunk; re-export it as WAV or MP3")
    available = size - data_offset
    if data_size in (0, 0xFFFFFFFF) and available > 0:
        data_size = available   # written to a pipe: the size was never filled in
    if not plain:
        return _decode_facts(path, info)
    duration = (min(data_size, available) // block_align) / rate
    if data_size - available >= block_align:
        declared = (data_size // block_align) / rate
        return replace(info, duration_s=duration, problem=_truncated(declared, duration))
    return replace(info, duration_s=duration)


def _truncated(declared: float, actual: float) -> str:
    return (f"truncated: its header promises {format_seconds(declared)} but only {format_seconds(actual)} "
            f"of audio is there; upload the whole file again")


# --- MP3 ---------------------------------------------------------------------------

def _mpeg_header(four: bytes) -> dict | None:
    """Decode an MPEG audio frame header, or None if these 4 bytes are not one."""
    if len(four) < 4 or four[0] != 0xFF or four[1] & 0xE0 != 0xE0:
        return None
    version = _MPEG_VERSIONS.get((four[1] >> 3) & 3)
    layer = _MPEG_LAYERS.get((four[1] >> 1) & 3)
    bitrate_index, rate_index = four[2] >> 4, (four[2] >> 2) & 3
    if version is None or layer is None or bitrate_index == 15 or rate_index == 3:
        return None
    rate = _MPEG_RATES[version][rate_index]
    header = {"version": version, "layer": layer, "rate": rate, "channels": 1 if four[3] >> 6 == 3 else 2,
              "length": 0}
    if layer == "III" and bitrate_index:
        kbps = _L3_BITRATES["1" if version == "1" else "2"][bitrate_index]
        factor = 144 if version == "1" else 72
        header["length"] = factor * kbps * 1000 // rate + ((four[2] >> 1) & 1)
    return header


def _find_mp3_frames(stream, head: bytes, size: int) -> int | None:
    """Offset of the first of two consecutive MP3 frames, after any ID3v2 tag; None if there are none."""
    start = 0
    if head[:3] == b"ID3" and len(head) >= 10:
        tag_size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        start = 10 + tag_size + (10 if head[5] & 0x10 else 0)
    window = head if start == 0 else _read_at(stream, start, _HEAD_BYTES)
    for index in range(max(len(window) - 3, 0)):
        if window[index] != 0xFF:
            continue
        header = _mpeg_header(window[index:index + 4])
        if header is None or header["layer"] != "III" or not header["length"]:
            continue
        following = index + header["length"]
        if start + following + 4 > size:
            return start + index   # a frame that ends the file
        after = _mpeg_header(window[following:following + 4])
        if after is not None and after["layer"] == "III" and after["rate"] == header["rate"]:
            return start + index
    return None


def _inspect_mp3(path: str, four: bytes, size: int) -> AudioInfo:
    header = _mpeg_header(four)
    info = AudioInfo("mp3", header["rate"], header["channels"], None, None, size,
                     encoding=f"MPEG-{header['version']} layer III")
    if size > MAX_PROMPT_BYTES:
        return info   # refused for its size anyway: not worth a decode
    return _decode_facts(path, info)


# ffmpeg's input summary: "[info]   Duration: 00:00:05.04, start: 0.025057, bitrate: 128 kb/s".
_DURATION_LINE = re.compile(r"\bDuration:\s*(\d+):(\d\d):(\d\d(?:\.\d+)?)")


def _decode_facts(path: str, info: AudioInfo) -> AudioInfo:
    """Decode the whole file once with ffmpeg: does it decode, how long is it, is it cut short?"""
    proc = run_ffmpeg(["-loglevel", "repeat+level+info", "-i", path, "-map", "0:a:0", "-f", "null",
                       "-progress", "pipe:1", "-nostats", "-"], file=path, timeout=DECODE_TIMEOUT_S)
    errors = [log_message(line) for line in proc.stderr.splitlines()
              if "[error]" in line or "[fatal]" in line]
    decoded = None
    for line in proc.stdout.splitlines():
        if line.startswith("out_time_us=") and line[12:].strip().isdigit():
            decoded = int(line[12:]) / 1e6
    if proc.returncode != 0 or not decoded:
        reason = errors[-1] if errors else "no audio could be decoded"
        return replace(info, problem=f"cannot be decoded (ffmpeg: {reason}); re-export it as MP3 or WAV")
    match = _DURATION_LINE.search(proc.stderr)
    if match:
        declared = int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])
        # The header (Xing/Info frame count) promises more than decodes: the upload was cut off.
        # Allow the encoder's padding: a few frames, or 2 %.
        if decoded < declared - max(0.1, 0.02 * declared):
            return replace(info, duration_s=decoded, problem=_truncated(declared, decoded))
    return replace(info, duration_s=decoded, decode_note=errors[0] if errors else None)
