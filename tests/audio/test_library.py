"""The sound cache: TTS rendered once per content, files converted once, one intact file under concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from autocall.audio.errors import AudioError
from autocall.audio.library import SoundLibrary
from autocall.engine.channel import FilePrompt, SoundPrompt, TtsPrompt

from .conftest import SENTENCE
from .helpers import FAKE_WORKER_ARGV, raw_samples, raw_seconds, rms, tone


def _files_below(folder) -> list[str]:
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


def test_tts_of_a_sentence_is_non_silent_audio_of_a_plausible_length(shared_library, sentence_name):
    base = shared_library.path_of(sentence_name)
    wide = raw_seconds(base + ".sln16", 16000)
    # 8 words at 160 words a minute is 3 s; espeak-ng pauses at the full stops
    assert 1.5 < wide < 6.0
    assert raw_seconds(base + ".sln", 8000) == pytest.approx(wide, rel=0.01)
    assert rms(raw_samples(base + ".sln16")) > 1000


def test_tts_name_is_a_stream_file_name_relative_to_sounds_dir(shared_library, sentence_name):
    assert sentence_name.startswith("tts/") and "." not in sentence_name
    assert os.path.isfile(os.path.join(shared_library.sounds_dir, sentence_name + ".sln16"))


def test_a_cache_hit_renders_nothing(shared_library, sentence_name):
    renders = shared_library.renders
    assert shared_library.is_cached_tts(SENTENCE)
    assert shared_library.tts_name(SENTENCE) == sentence_name
    assert shared_library.tts_name("  Thank you for calling Acme   support.\nPlease hold. ") == sentence_name
    assert shared_library.tts_name(SENTENCE, voice="EN-US", rate=160) == sentence_name
    assert shared_library.renders == renders


def test_voice_and_rate_are_part_of_the_cache_key(shared_library, sentence_name):
    assert not shared_library.is_cached_tts(SENTENCE, voice="de")
    assert not shared_library.is_cached_tts(SENTENCE, rate=200)
    renders = shared_library.renders
    slower = shared_library.tts_name("Please hold.", rate=120)
    faster = shared_library.tts_name("Please hold.", rate=240)
    assert slower != faster and shared_library.renders == renders + 2
    assert (raw_seconds(shared_library.path_of(slower) + ".sln16", 16000)
            > raw_seconds(shared_library.path_of(faster) + ".sln16", 16000))


def test_two_concurrent_renders_of_one_prompt_in_one_library_render_once(library):
    names = []
    threads = [threading.Thread(target=lambda: names.append(library.tts_name("Your call is important."))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == 1 and library.renders == 1


def test_two_processes_rendering_one_prompt_leave_one_intact_file(tmp_path):
    sounds = tmp_path / "sounds"
    script = (
        "import json, sys\n"
        "from autocall.audio.library import SoundLibrary\n"
        f"library = SoundLibrary({str(sounds)!r})\n"
        "library.is_cached_tts('warm up')\n"   # voices and engine version read before the start line
        "sys.stdin.readline()\n"
        "print(json.dumps([library.tts_name('We are connecting you now.'), library.renders]))\n"
        "library.close()\n")
    procs = [subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for proc in procs:   # both are waiting; let them go at once
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
    (name_a, renders_a), (name_b, renders_b) = results
    assert name_a == name_b and renders_a + renders_b == 1
    assert [path for path in _files_below(sounds) if not path.startswith(".autocall")] == [
        name_a + ".sln", name_a + ".sln16"]
    seconds = raw_seconds(sounds / (name_a + ".sln16"), 16000)
    assert os.path.getsize(sounds / (name_a + ".sln16")) % 2 == 0 and 1.0 < seconds < 4.0
    assert raw_seconds(sounds / (name_a + ".sln"), 8000) == pytest.approx(seconds, rel=0.01)
    assert os.listdir(sounds / ".autocall" / "tmp") == []


def test_two_libraries_on_one_folder_share_renders(tmp_path):
    first, second = SoundLibrary(tmp_path), SoundLibrary(tmp_path)
    try:
        name = first.tts_name("Goodbye.")
        assert second.is_cached_tts("Goodbye.") and second.tts_name("Goodbye.") == name
        assert (first.renders, second.renders) == (1, 0)
    finally:
        first.close()
        second.close()


def test_a_file_prompt_is_converted_once_per_content(library, tmp_path):
    source = tone(tmp_path / "welcome.mp3", seconds=2, rate=44100, channels=2, fmt="mp3")
    copy = tmp_path / "copy.mp3"
    copy.write_bytes(open(source, "rb").read())
    name = library.file_name(source)
    assert name.startswith("file/") and library.file_name(copy) == name
    assert library.conversions == 1
    assert raw_seconds(library.path_of(name) + ".sln16", 16000) == pytest.approx(2.0, rel=0.01)


def test_a_low_rate_file_prompt_carries_its_warning(library, tmp_path):
    source = tone(tmp_path / "narrow.wav", rate=8000)
    prepared = library.prepare(FilePrompt("narrow.wav", source))
    assert prepared.made and prepared.warnings == ("sampled at 8000 Hz, below 16 kHz: quality will be limited",)


def test_an_unfit_file_prompt_is_an_audio_error_naming_it(library, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioError) as caught:
        library.file_name(bad)
    assert caught.value.file == str(bad) and library.conversions == 0


def test_prepare_dispatches_on_the_engine_prompt_values(shared_library, sentence_name, tmp_path):
    assert shared_library.prepare(TtsPrompt(SENTENCE)).name == sentence_name
    assert shared_library.prepare(SoundPrompt("beep")).name == "beep"
    source = tone(tmp_path / "x.wav")
    assert shared_library.name_for(FilePrompt("x.wav", source)) == shared_library.file_name(source)


@pytest.mark.parametrize("text, voice, rate, problem", [
    ("   ", None, None, "empty text; there is nothing to say"),
    ("Hello", "qq-zz", None, "unknown voice; available:"),
    ("Hello", None, 999, "out of range; use 80 to 450 words per minute"),
])
def test_bad_tts_requests_are_audio_errors_before_any_render(library, text, voice, rate, problem):
    with pytest.raises(AudioError, match=problem):
        library.tts_name(text, voice=voice, rate=rate)
    assert library.renders == 0


def test_a_hung_render_is_an_audio_error_and_leaves_nothing_behind(tmp_path):
    library = SoundLibrary(tmp_path / "sounds", worker_timeout=1.0, worker_argv=FAKE_WORKER_ARGV)
    try:
        with pytest.raises(AudioError, match='prompt "hang": text-to-speech did not finish'):
            library.tts_name("hang")
        assert library.renders == 0 and not library.is_cached_tts("hang")
        assert [p for p in _files_below(tmp_path / "sounds") if not p.startswith(".autocall/locks")] == []
        library.tts_name("fine")   # the fake worker's tone, through the real conversion
        assert library.renders == 1
    finally:
        library.close()


def test_an_unwritable_sounds_dir_is_an_audio_error_naming_it(tmp_path):
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    with SoundLibrary(blocker / "sounds") as library:
        with pytest.raises(AudioError, match="cannot write sounds .*check the sounds_dir"):
            library.tts_name("Hello.")


# --- the cache's size cap ---------------------------------------------------------------------------------

def test_prune_removes_the_least_recently_used_sounds_past_the_cap(library):
    import time
    texts = [f"Prompt number {n} of the cache test." for n in range(5)]
    names = [library.tts_name(text) for text in texts]
    now = time.time()
    for age, name in zip((5000, 4000, 3000, 2000, 1000), names):     # made long ago, oldest first
        for extension in (".sln16", ".sln"):
            os.utime(library.path_of(name) + extension, (now - age, now - age))
    library.touch([names[0]])                                          # the oldest was just played again
    sizes = {size_name: size for _, size, size_name in library.cache_usage()}
    keep = sizes[names[0]] + sizes[names[3]] + sizes[names[4]]
    report = library.prune(keep)
    assert set(report.removed_names) == {names[1], names[2]} and report.kept_bytes == keep
    assert [library.is_cached_tts(text) for text in texts] == [True, False, False, True, True]
    assert library.prune(0).removed == 2 and library.is_cached_tts(texts[0])    # used in the grace period: kept
    assert library.tts_name(texts[1]) == names[1] and library.is_cached_tts(texts[1])   # made again on demand


def test_prompts_prune_trims_the_cache_to_its_cap(tmp_path):
    import time
    sounds = tmp_path / "sounds"
    old = time.time() - 3600
    for folder, count in (("tts", 6), ("file", 2)):
        (sounds / folder).mkdir(parents=True)
        for n in range(count):
            for extension, size in ((".sln16", 300_000), (".sln", 150_000)):
                path = sounds / folder / f"{folder}{n}{extension}"
                path.write_bytes(b"\0" * size)
                os.utime(path, (old + n, old + n))
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "AUTOCALL_SOUNDS_DIR": str(sounds),
           "AUTOCALL_SOUND_CACHE_MAX_MB": "2"}
    done = subprocess.run([sys.executable, "-m", "autocall", "prompts", "prune"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("prompts: removed 4 sounds (1.8 MB); the cache holds 4 (1.8 MB, cap 2 MB)")
    left = sorted(p.name for p in sounds.rglob("*.sln16"))
    assert left == ["tts2.sln16", "tts3.sln16", "tts4.sln16", "tts5.sln16"]     # the two oldest of each
