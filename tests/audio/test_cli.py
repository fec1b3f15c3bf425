"""``autocall audio check|convert|voices`` and ``autocall prompts build``: tables, files, exit codes, one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from dataclasses import dataclass, field

import pytest

from autocall.cli.main import main
from autocall.engine.channel import FilePrompt, SoundPrompt, TtsPrompt

from .helpers import raw_seconds, tone


def test_audio_check_prints_a_table_and_exits_0_with_only_warnings(tmp_path, capsys):
    good = tone(tmp_path / "good.mp3", seconds=2, rate=44100, channels=2, fmt="mp3")
    narrow = tone(tmp_path / "narrow.wav", rate=8000)
    assert main(["audio", "check", good, narrow]) == 0
    header, first, second = capsys.readouterr().out.splitlines()
    assert header.split() == ["file", "format", "rate", "channels", "duration", "size", "verdict"]
    assert first.split()[1:6] == ["mp3", "44100", "Hz", "2", "2.0"] and first.endswith("ok")
    assert second.endswith("warning: sampled at 8000 Hz, below 16 kHz: quality will be limited")


def test_audio_check_exits_1_when_any_file_is_unusable(tmp_path, capsys):
    good = tone(tmp_path / "good.wav")
    text = tmp_path / "fake.wav"
    text.write_text("hello")
    assert main(["audio", "check", good, str(text), str(tmp_path / "gone.mp3")]) == 1
    out = capsys.readouterr().out
    assert "error: not MP3 or WAV: it is a text file, not audio" in out and "error: file not found" in out


@pytest.mark.parametrize("out_name, expected", [
    ("x.sln16", [("x.sln16", 16000)]), ("x.sln", [("x.sln", 8000)]),
    ("x", [("x.sln16", 16000), ("x.sln", 8000)]),
])
def test_audio_convert_writes_the_form_the_extension_names(tmp_path, capsys, out_name, expected):
    source = tone(tmp_path / "in.mp3", seconds=2, rate=44100, channels=2, fmt="mp3")
    assert main(["audio", "convert", source, str(tmp_path / out_name)]) == 0
    for name, rate in expected:
        assert raw_seconds(tmp_path / name, rate) == pytest.approx(2.0, rel=0.01)
    assert capsys.readouterr().out.startswith("wrote ")


def test_audio_convert_turns_an_ogg_into_a_prompt_ready_wav(tmp_path):
    source = tone(tmp_path / "in.ogg", seconds=1, fmt="ogg", codec="libvorbis")
    assert main(["audio", "convert", source, str(tmp_path / "out.wav")]) == 0
    assert main(["audio", "check", str(tmp_path / "out.wav")]) == 0


@pytest.mark.parametrize("args, message", [
    (["{tmp}/in.wav", "{tmp}/out.mp3"], "cannot write '.mp3' files; name it .sln16, .sln, .wav"),
    (["{tmp}/in.wav", "{tmp}/nowhere/out.sln"], "the folder {tmp}/nowhere does not exist"),
    (["{tmp}/notes.txt", "{tmp}/out.sln"], "{tmp}/notes.txt: cannot convert: it is a text file, not audio"),
    (["{tmp}/missing.wav", "{tmp}/out.sln"], "{tmp}/missing.wav: file not found"),
    (["{tmp}/in.wav", "{tmp}/folder.sln"], "{tmp}/folder.sln: cannot be written (Is a directory)"),
])
def test_audio_convert_user_errors_are_one_line_and_exit_1(tmp_path, capsys, args, message):
    tone(tmp_path / "in.wav")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "folder.sln").mkdir()
    assert main(["audio", "convert", *(arg.format(tmp=tmp_path) for arg in args)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("autocall: error: ") and err.count("\n") == 1
    assert message.format(tmp=tmp_path) in err


def test_audio_voices_lists_languages_ids_and_names(capsys):
    assert main(["audio", "voices", "en-us"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["language", "id", "name", "also"]
    assert rows[1].split()[:2] == ["en-us", "gmw/en-us"]


@dataclass
class FakeResult:
    ok: bool
    prompts: list
    diagnostics: list = field(default_factory=list)

    @property
    def program(self):
        return types.SimpleNamespace(static_prompts=lambda: self.prompts)

    def render(self) -> str:
        return "\n".join(self.diagnostics)


@pytest.fixture
def fake_compiler(monkeypatch, tmp_path):
    """The compiler's contract: Compiler().compile_file(path) -> result with diagnostics, render(), ok,
    program.static_prompts()."""
    monkeypatch.chdir(tmp_path)   # no autocall.toml of the tree picked up by accident
    results = {}

    class FakeCompiler:
        def __init__(self, **checks):
            pass

        def compile_file(self, path):
            return results[os.path.basename(path)]

    monkeypatch.setattr("autocall.dsl.compiler.Compiler", FakeCompiler)
    return results


def test_prompts_build_renders_the_scripts_prompts_into_sounds_dir(tmp_path, capsys, fake_compiler, monkeypatch):
    monkeypatch.setenv("AUTOCALL_SOUNDS_DIR", str(tmp_path / "sounds"))
    audio = tone(tmp_path / "closed.wav", seconds=1)
    fake_compiler["a.dlg"] = FakeResult(True, [TtsPrompt("Welcome to Acme."), SoundPrompt("beep")])
    fake_compiler["b.dlg"] = FakeResult(True, [TtsPrompt("Welcome to Acme."), FilePrompt("closed.wav", audio)])
    assert main(["prompts", "build", "a.dlg", "b.dlg"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("prompts: 2 rendered, 0 already cached, 0 failed; standard sounds: autocall-beep")
    sounds = sorted(os.listdir(tmp_path / "sounds"))
    assert {"tts", "file", "autocall-beep.sln16", "autocall-beep.sln"} <= set(sounds)
    assert main(["prompts", "build", "a.dlg", "b.dlg"]) == 0
    assert "0 rendered, 2 already cached" in capsys.readouterr().out


def test_prompts_build_prints_where_each_sound_went(tmp_path, capsys, fake_compiler, monkeypatch):
    sounds = tmp_path / "sounds"
    monkeypatch.setenv("AUTOCALL_SOUNDS_DIR", str(sounds))
    audio = tone(tmp_path / "closed.wav", seconds=1)
    fake_compiler["a.dlg"] = FakeResult(True, [TtsPrompt("Welcome to Acme."), FilePrompt("closed.wav", audio),
                                               SoundPrompt("beep")])
    assert main(["prompts", "build", "a.dlg"]) == 0
    first, second, _summary = capsys.readouterr().out.splitlines()
    for line, label, folder in [(first, 'prompt "Welcome to Acme."', "tts"), (second, "closed.wav", "file")]:
        found = re.fullmatch(r"(rendered|cached) +(.+) -> (\S+)\.sln16 \(\+ \.sln\)", line)
        assert found and found[1] == "rendered" and found[2] == label, line
        assert found[3].startswith(f"{sounds}/{folder}/")
        assert os.path.exists(found[3] + ".sln16") and os.path.exists(found[3] + ".sln")
    assert main(["prompts", "build", "a.dlg"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[:2]] == ["cached", "cached"]


def test_prompts_build_exits_1_on_a_script_that_does_not_compile_or_a_bad_prompt(tmp_path, capsys, fake_compiler,
                                                                                    monkeypatch):
    monkeypatch.setenv("AUTOCALL_SOUNDS_DIR", str(tmp_path / "sounds"))
    fake_compiler["bad.dlg"] = FakeResult(False, [], ["bad.dlg:3:1: error: unknown state 'mian'"])
    fake_compiler["voice.dlg"] = FakeResult(True, [TtsPrompt("Hi", voice="qq-zz")])
    assert main(["prompts", "build", "bad.dlg", "voice.dlg"]) == 1
    err = capsys.readouterr().err
    assert "bad.dlg:3:1: error: unknown state 'mian'" in err
    assert 'autocall: error: voice "qq-zz": unknown voice' in err
    assert "some scripts did not compile" in err


def test_cli_modules_import_nothing_heavy_so_autocall_check_stays_fast():
    code = ("import sys, autocall.cli.audio_cmd, autocall.cli.prompts_cmd, autocall.audio.probe, "
            "autocall.audio.voices\n"
            "print(sorted(m for m in ('pydub', 'rich', 'twisted', 'pyttsx3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
