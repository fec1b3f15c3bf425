"""build_prompts: every distinct prompt made once, counts of rendered / cached / failed, messages in prompt order."""

from __future__ import annotations

from autocall.audio.build import build_prompts
from autocall.engine.channel import FilePrompt, SoundPrompt, TtsPrompt

from .helpers import tone


def test_build_counts_rendered_cached_and_failed_in_prompt_order(library, tmp_path, capsys):
    good = tone(tmp_path / "good.wav", rate=8000)
    text = tmp_path / "notes.mp3"
    text.write_text("not audio")
    prompts = [TtsPrompt("Welcome."), TtsPrompt("Welcome."), SoundPrompt("beep"), FilePrompt("good.wav", good),
               FilePrompt("missing.mp3", str(tmp_path / "missing.mp3")), FilePrompt("notes.mp3", str(text)),
               TtsPrompt("Hello", voice="qq-zz")]
    report = build_prompts(prompts, library, progress=False)
    assert (report.rendered, report.cached) == (2, 0)
    assert report.failed == [f"{tmp_path / 'missing.mp3'}: file not found",
                             f"{text}: not MP3 or WAV: it is a text file, not audio",
                             'voice "qq-zz": ' + report.failed[2].split(": ", 1)[1]]
    assert report.warnings == ["good.wav: sampled at 8000 Hz, below 16 kHz: quality will be limited"]
    assert not report.ok and library.renders == 1
    assert capsys.readouterr() == ("", "")   # no progress bar when not asked for


def test_a_second_build_finds_everything_cached(library):
    prompts = [TtsPrompt("One."), TtsPrompt("Two.")]
    assert build_prompts(prompts, library, progress=False).summary() == "2 rendered, 0 already cached, 0 failed"
    again = build_prompts(prompts, library, progress=True)
    assert again.summary() == "0 rendered, 2 already cached, 0 failed" and again.ok
    assert library.renders == 2
