"""Script voice names mapped to espeak-ng voice ids, and unknown voices refused with what exists."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autocall.audio import voices
from autocall.audio.errors import AudioError
from autocall.audio.voices import available_voices, check_rate, resolve_voice

LISTING = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  de              --/M      German             gmw/de               
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 5  en-gb-x-gbclan  --/M      English_(Lancaster) gmw/en-GB-x-gbclan   (en-gb 3)(en 5)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  it              --/M      Italian            roa/it               
"""


@pytest.mark.parametrize("written, voice_id", [
    ("en-us", "gmw/en-us"), ("EN-US", "gmw/en-us"), ("en_US", "gmw/en-us"), ("gmw/en-US", "gmw/en-us"),
    ("en", "gmw/en"), ("en-gb", "gmw/en"), ("de", "gmw/de"), ("it", "roa/it"), ("en-us+f3", "gmw/en-us+f3"),
])
def test_script_voice_names_map_to_pyttsx3_voice_ids(written, voice_id):
    assert resolve_voice(written) == voice_id
    assert voice_id.split("+")[0] in available_voices()


@given(st.sampled_from(["en-us", "de", "it", "en-gb", "fr"]).flatmap(
    lambda code: st.tuples(st.just(code), st.lists(st.booleans(), min_size=len(code), max_size=len(code)))))
def test_voice_names_are_case_insensitive(case):
    code, upper = case
    written = "".join(ch.upper() if up else ch for ch, up in zip(code, upper))
    assert resolve_voice(written) == resolve_voice(code)


def test_unknown_voice_lists_the_closest_voices_and_how_to_see_all():
    with pytest.raises(AudioError) as caught:
        resolve_voice("en-au")
    assert caught.value.file == 'voice "en-au"'
    assert caught.value.problem.startswith("unknown voice; closest: en-us")
    assert "autocall audio voices" in caught.value.problem


def test_unknown_voice_with_nothing_close_lists_every_language():
    with pytest.raises(AudioError) as caught:
        resolve_voice("qq-zz")
    assert "available: af, am," in caught.value.problem and ", en-us, " in caught.value.problem


def test_unknown_variant_is_refused_with_the_closest_or_all_variants():
    with pytest.raises(AudioError, match=r"unknown variant 'f33'; closest: .*f3"):
        resolve_voice("en-us+f33")
    with pytest.raises(AudioError, match=r"unknown variant 'qqqqqq'; variants: .*klatt"):
        resolve_voice("en-us+qqqqqq")


def test_secondary_language_picks_the_voice_with_the_best_priority():
    table = voices.Voices(lambda: tuple(voices._parse_listing(LISTING)), lambda: ())
    assert table._find("en").id == "gmw/en"
    assert table._find("english-(america)").id == "gmw/en-us"
    assert table._find("en-gb").id == "gmw/en"   # primary language beats a secondary one


def test_listing_rows_parse_to_ids_names_and_language_priorities():
    table = voices._parse_listing(LISTING)
    clan = next(v for v in table if v.id == "gmw/en-gb-x-gbclan")
    assert clan.name == "English_(Lancaster)"
    assert clan.languages == (("en-gb-x-gbclan", 5), ("en-gb", 3), ("en", 5))


@pytest.mark.parametrize("rate, ok", [(79, False), (80, True), (160, True), (450, True), (451, False)])
def test_rate_limits_are_espeaks(rate, ok):
    if ok:
        assert check_rate(rate) == rate
    else:
        with pytest.raises(AudioError, match="out of range; use 80 to 450 words per minute"):
            check_rate(rate)


def test_without_the_espeak_ng_command_voices_come_from_the_library_through_pyttsx3():
    table = voices._voices_from_pyttsx3()
    by_id = {voice.id: voice for voice in table}
    assert by_id["gmw/en-us"].languages[0][0] == "en-us"
    assert len(table) == len(available_voices())
