"""The shipped standard sounds: the record beep, reproducible, installed as autocall-beep."""

from __future__ import annotations

import os

import pytest

from autocall.audio import standard
from autocall.audio.standard import BEEP_NAME, beep_pcm, install_standard_prompts, shipped_prompts_dir

from .helpers import raw_samples, zero_crossings_per_second


def test_shipped_beep_files_are_exactly_what_make_prompts_makes():
    folder = shipped_prompts_dir()
    assert folder is not None and folder.endswith("prompts")
    for ext, rate in standard.EXTENSIONS.items():
        with open(os.path.join(folder, "beep" + ext), "rb") as stream:
            assert stream.read() == beep_pcm(rate)


@pytest.mark.parametrize("ext, rate", [(".sln16", 16000), (".sln", 8000)])
def test_beep_is_a_1khz_tone_of_250ms(ext, rate):
    samples = raw_samples(os.path.join(shipped_prompts_dir(), "beep" + ext))
    assert len(samples) == rate // 4
    assert zero_crossings_per_second(samples, rate) == pytest.approx(2000, rel=0.02)
    peak = max(abs(sample) for sample in samples)
    assert abs(samples[0]) < 0.05 * peak and abs(samples[-1]) < 0.05 * peak   # faded: no click


def test_install_copies_the_beep_under_its_own_name_and_is_idempotent(tmp_path):
    assert install_standard_prompts(tmp_path / "sounds") == [BEEP_NAME]
    first = {name: os.stat(tmp_path / "sounds" / name).st_mtime_ns for name in os.listdir(tmp_path / "sounds")}
    assert sorted(first) == [BEEP_NAME + ".sln", BEEP_NAME + ".sln16"]
    install_standard_prompts(tmp_path / "sounds")
    assert {name: os.stat(tmp_path / "sounds" / name).st_mtime_ns for name in first} == first


def test_without_the_prompts_folder_the_beep_is_generated(tmp_path, monkeypatch):
    monkeypatch.setattr(standard, "shipped_prompts_dir", lambda: None)
    install_standard_prompts(tmp_path)
    with open(tmp_path / (BEEP_NAME + ".sln16"), "rb") as stream:
        assert stream.read() == beep_pcm(16000)
