"""``file`` prompts stay in the script's folder (or the sounds folder); ``sound`` names are names;
a WAV header claiming an absurd sample rate is refused by ``check``, not at call time."""

from __future__ import annotations

import struct
import wave

import pytest

from autocall.dsl.compiler import Compiler


def write_wav(path, rate: int = 16000, seconds: float = 0.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x01\x00" * int(rate * seconds))


def script(folder, prompt: str):
    path = folder / "test.dlg"
    path.write_text(f'dialogue t\nstart main\nstate main:\n    play {prompt}\n', encoding="utf-8")
    return str(path)


@pytest.fixture
def layout(tmp_path):
    scripts = tmp_path / "scripts"
    write_wav(scripts / "audio" / "hello.wav")
    write_wav(tmp_path / "outside" / "secret.wav")
    (scripts / "audio" / "link.wav").symlink_to(tmp_path / "outside" / "secret.wav")
    write_wav(tmp_path / "sounds" / "shared.wav")
    (scripts / "audio" / "shared.wav").symlink_to(tmp_path / "sounds" / "shared.wav")
    return tmp_path


@pytest.mark.parametrize("path, message", [
    ("../outside/secret.wav", "absolute paths and '..' are not allowed"),
    ("audio/../../outside/secret.wav", "absolute paths and '..' are not allowed"),
    ("{outside}/secret.wav", "absolute paths and '..' are not allowed"),
    ("audio/link.wav", "a link to a file outside the script's folder"),
])
def test_a_file_prompt_cannot_reach_outside_the_scripts_folder(compiler, layout, path, message):
    path = path.format(outside=layout / "outside")
    result = compiler.compile_file(script(layout / "scripts", f'file "{path}"'))
    assert not result.ok and message in result.render(), result.render()


def test_a_file_prompt_inside_or_linked_into_the_sounds_folder_is_fine(compiler, layout):
    assert compiler.compile_file(script(layout / "scripts", 'file "audio/hello.wav"')).ok
    assert not compiler.compile_file(script(layout / "scripts", 'file "audio/shared.wav"')).ok
    with_sounds = Compiler(audio_roots=(str(layout / "sounds"),))
    assert with_sounds.compile_file(script(layout / "scripts", 'file "audio/shared.wav"')).ok


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "custom/../../x", ".hidden", "a b",
                                  'we"ird', "x\\y", "a;b", "x/"])
def test_a_sound_name_is_a_name(compile_text, name):
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    result = compile_text(f'dialogue t\nstart main\nstate main:\n    play sound "{escaped}"\n')
    assert not result.ok and "is not a sound name" in result.render()


def test_usual_sound_names_are_accepted(compile_text):
    result = compile_text('dialogue t\nstart main\nstate main:\n    play sound "beep"\n'
                          '    play sound "custom/vm-intro"\n    play sound "digits/1"\n')
    assert result.ok, result.render()


@pytest.mark.parametrize("rate", [4_000_000_000, 1, 999_999])
def test_a_wav_claiming_an_absurd_rate_is_refused_by_check(compiler, tmp_path, rate):
    path = tmp_path / "audio" / "bad.wav"
    write_wav(path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 24, rate)              # the fmt chunk's sample rate
    path.write_bytes(bytes(data))
    result = compiler.compile_file(script(tmp_path, 'file "audio/bad.wav"'))
    assert not result.ok and "is not a real one" in result.render(), result.render()
