"""Audio speed: cold TTS render per prompt, cache hit, conversion speed; each beside a baseline from the same run.

Run: ``.venv/bin/python benchmarks/audio_bench.py``. Exits 1 if a cache hit
costs 1 ms or more (the budget: a call's prompt lookup must be free).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from autocall.audio.convert import convert_for_asterisk  # noqa: E402
from autocall.audio.library import SoundLibrary  # noqa: E402
from autocall.audio.voices import resolve_voice  # noqa: E402
from autocall.audio.worker import TtsWorker  # noqa: E402

CACHE_HIT_BUDGET_S = 0.001
PROMPTS = [f"Thank you for calling. Your reference number is {n}. Please hold while we connect you."
           for n in range(10)]


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def bench_tts(folder: str) -> float:
    library = SoundLibrary(os.path.join(folder, "sounds"))
    try:
        first = timed(library.tts_name, "Warming up.")   # starts the worker, reads voices and versions
        cold = [timed(library.tts_name, text) for text in PROMPTS]
        assert library.renders == len(PROMPTS) + 1
        hits = []
        for text in PROMPTS:
            repeats = 2000
            start = time.perf_counter()
            for _ in range(repeats):
                library.tts_name(text)
            hits.append((time.perf_counter() - start) / repeats)
        assert library.renders == len(PROMPTS) + 1, "a cache hit rendered"
        name = library.tts_name(PROMPTS[0])
        path = library.path_of(name) + ".sln16"
        start = time.perf_counter()
        for _ in range(2000):
            os.stat(path)
        stat_floor = (time.perf_counter() - start) / 2000
    finally:
        library.close()

    # Baselines: the worker alone (espeak's part of a cold render), and pyttsx3 in this process (no isolation).
    worker = TtsWorker()
    voice = resolve_voice("en-us")
    try:
        worker.render("Warming up.", voice, 160, os.path.join(folder, "w.wav"))
        in_worker = [timed(worker.render, text, voice, 160, os.path.join(folder, "w.wav")) for text in PROMPTS]
    finally:
        worker.close()
    in_process = _pyttsx3_in_process(folder, voice)

    print(f"TTS first render (worker start, voices, versions): {first * 1000:7.1f} ms")
    print(f"TTS cold render per prompt (render + convert):     {statistics.median(cold) * 1000:7.1f} ms median, "
          f"{max(cold) * 1000:.1f} ms max, over {len(cold)} prompts")
    print(f"  of which espeak-ng in the worker process:        {statistics.median(in_worker) * 1000:7.1f} ms median")
    print(f"  baseline: pyttsx3 in this process (no worker):   {statistics.median(in_process) * 1000:7.1f} ms median")
    print(f"TTS cache hit:                                     {statistics.median(hits) * 1e6:7.1f} µs median, "
          f"{max(hits) * 1e6:.1f} µs max (budget {CACHE_HIT_BUDGET_S * 1e6:.0f} µs)")
    print(f"  baseline: one os.stat of the sound:              {stat_floor * 1e6:7.1f} µs")
    return max(hits)


def _pyttsx3_in_process(folder: str, voice: str) -> list[float]:
    import pyttsx3
    engine = pyttsx3.init("espeak")
    engine.setProperty("voice", voice)
    engine.setProperty("rate", 160)
    out = os.path.join(folder, "in-process.wav")

    def render(text: str) -> None:
        engine.save_to_file(text, out)
        engine.runAndWait()

    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    sys.stdout.flush()
    os.dup2(devnull, 1)   # pyttsx3's driver prints a line per file
    try:
        render("Warming up.")
        return [timed(render, text) for text in PROMPTS]
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def bench_conversion(folder: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # pydub imports audioop
        from pydub import AudioSegment
        from pydub.generators import WhiteNoise
    seconds = 60
    noise = WhiteNoise(sample_rate=44100).to_audio_segment(duration=1000, volume=-12)
    stereo = AudioSegment.from_mono_audiosegments(noise, noise) * seconds
    sources = {"MP3 44.1 kHz stereo": os.path.join(folder, "long.mp3"),
               "WAV 44.1 kHz stereo": os.path.join(folder, "long.wav")}
    stereo.export(sources["MP3 44.1 kHz stereo"], format="mp3", bitrate="128k")
    stereo.export(sources["WAV 44.1 kHz stereo"], format="wav")
    for label, source in sources.items():
        ours = min(timed(convert_for_asterisk, source, folder, "converted") for _ in range(3))

        def pydub_in_process() -> None:
            segment = AudioSegment.from_file(source).set_channels(1).set_sample_width(2)
            for rate, ext in ((16000, ".sln16"), (8000, ".sln")):
                with open(os.path.join(folder, "pydub" + ext), "wb") as out:
                    out.write(segment.set_frame_rate(rate).raw_data)

        baseline = min(timed(pydub_in_process) for _ in range(3))
        print(f"Conversion {label}, {seconds} s -> .sln16 + .sln: {seconds / ours:6.0f}x realtime "
              f"({ours * 1000:.0f} ms); baseline pydub in process: {seconds / baseline:6.0f}x ({baseline * 1000:.0f} ms)")


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        worst_hit = bench_tts(folder)
        bench_conversion(folder)
    if worst_hit >= CACHE_HIT_BUDGET_S:
        print(f"FAIL: a cache hit took {worst_hit * 1e6:.0f} µs, over the {CACHE_HIT_BUDGET_S * 1e6:.0f} µs budget")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
