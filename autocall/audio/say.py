"""``autocall say``: one text spoken as a prompt would be (same voices, renderer and 16 kHz sound), to a file or a player.

The text goes through a throwaway ``SoundLibrary`` (the render and conversion
every prompt goes through, without touching the real ``sounds_dir``); its
16 kHz sound is what a wideband call hears. It is then written in the form
the output name asks for, and played with the first audio player found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass

from autocall.audio.convert import SLN16_RATE, convert_audio, outputs_for
from autocall.audio.errors import AudioError
from autocall.audio.ffmpeg import failure_reason
from autocall.audio.library import SoundLibrary
from autocall.audio.voices import check_rate, resolve_voice

# (program, arguments before the file), tried in this order. ffplay reports a missing audio device on
# stderr but still exits 0, hence -loglevel error and the stderr check in ``play``.
PLAYERS = (("paplay", ()), ("pw-play", ()), ("aplay", ("-q",)),
           ("ffplay", ("-nodisp", "-autoexit", "-loglevel", "error")))
PLAYER_PACKAGES = "paplay (pulseaudio-utils), aplay (alsa-utils) or ffplay (ffmpeg)"


@dataclass(frozen=True)
class Spoken:
    """What ``speak`` made: the files written, how long the sound lasts, the voice id and rate used."""

    paths: tuple[str, ...]
    seconds: float
    voice: str
    rate: int


def speak(text: str, voice: str, rate: int, out_path: str | None, play: bool) -> Spoken:
    """Render ``text``; write it to ``out_path`` (by its extension, see ``outputs_for``) and/or play it."""
    voice_id, rate = resolve_voice(voice), check_rate(rate)
    outputs = outputs_for(out_path) if out_path else []
    player = find_player() if play else None
    if play and player is None:
        raise AudioError("--play", f"no audio player found; install {PLAYER_PACKAGES}, "
                                   f"or write the sound to a file with -o OUT.wav")
    with tempfile.TemporaryDirectory(prefix="autocall-say-") as folder:
        with SoundLibrary(os.path.join(folder, "sounds"), default_voice=voice, default_rate=rate) as library:
            raw = library.path_of(library.tts_name(text, voice, rate)) + ".sln16"
        wav = os.path.join(folder, "say.wav")
        seconds = _wrap_as_wav(raw, wav)
        if outputs:
            convert_audio(wav, outputs)
        if player is not None:
            playable = next((o.path for o in outputs if o.container == "wav"), wav)
            _play(player, playable)
    return Spoken(tuple(o.path for o in outputs), seconds, voice_id, rate)


def find_player() -> list[str] | None:
    """The command line (without the file) of the first audio player on PATH, or None."""
    for program, arguments in PLAYERS:
        path = shutil.which(program)
        if path:
            return [path, *arguments]
    return None


def _wrap_as_wav(raw_path: str, wav_path: str) -> float:
    """Put the raw 16 kHz sound in a WAV container (nothing resampled); return its length in seconds."""
    with open(raw_path, "rb") as stream:
        frames = stream.read()
    with wave.open(wav_path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SLN16_RATE)
        out.writeframes(frames)
    return len(frames) / 2 / SLN16_RATE


def _play(player: list[str], path: str) -> None:
    name = os.path.basename(player[0])
    try:
        done = subprocess.run([*player, path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, errors="replace", check=False)
    except OSError as exc:
        raise AudioError(name, f"cannot be started ({exc.strerror})") from None
    if done.returncode != 0 or done.stderr.strip():
        reason = failure_reason(done.stderr).replace(path, "the sound") if done.stderr.strip() \
            else f"exit code {done.returncode}"
        raise AudioError(name, f"could not play the sound ({reason}); is an audio device available? "
                               f"Write it to a file with -o OUT.wav instead")
