"""A prompt built from a secret value is rendered per call under a random name and deleted after the call
(a name derived from its text would give the PIN away in 10,000 guesses, and Asterisk logs it)."""

from __future__ import annotations

import hashlib
import os

from autocall.audio.library import PRIVATE_FOLDER
from autocall.engine.channel import TtsPrompt

TEXT = "You typed 4 7 3 9."


def files_under(folder) -> set[str]:
    return {os.path.relpath(os.path.join(root, name), folder)
            for root, _, names in os.walk(folder) for name in names}


def test_a_secret_prompt_gets_a_random_name_each_time_and_is_deleted(library):
    first = library.name_for(TtsPrompt(TEXT, secret=True))
    second = library.name_for(TtsPrompt(TEXT, secret=True))
    assert first.startswith(PRIVATE_FOLDER + "/") and second.startswith(PRIVATE_FOLDER + "/") and first != second
    plain_name = library._tts_request(TEXT, None, None)[0]
    on_disk = files_under(library.sounds_dir)
    assert not any(plain_name.rsplit("/", 1)[-1] in path for path in on_disk)
    assert not any(hashlib.sha256(TEXT.encode()).hexdigest()[:12] in path for path in on_disk)
    assert os.path.exists(library.path_of(first) + ".sln16")
    library.discard(library.path_of(first))
    library.discard(second)
    assert not any(path.startswith(PRIVATE_FOLDER + "/") for path in files_under(library.sounds_dir))


def test_discard_touches_nothing_outside_the_private_folder(library):
    name = library.name_for(TtsPrompt("Hello."))
    library.discard(name)
    library.discard(library.path_of(name))
    assert os.path.exists(library.path_of(name) + ".sln16")
