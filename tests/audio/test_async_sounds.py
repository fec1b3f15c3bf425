"""AsyncSounds: prompts prepared off the reactor thread, one job for concurrent requests of the same prompt."""

from __future__ import annotations

import queue
import threading

import pytest
from twisted.python.threadpool import ThreadPool

from autocall.audio.async_sounds import AsyncSounds
from autocall.audio.errors import AudioError
from autocall.engine.channel import FilePrompt, SoundPrompt, TtsPrompt

from .conftest import SENTENCE
from .helpers import tone


class QueueReactor:
    """Just what deferToThreadPool needs: results come back through ``callFromThread``, run by ``drain``."""

    def __init__(self) -> None:
        self.calls: queue.Queue = queue.Queue()
        self.triggers: list[tuple] = []
        self.thread = threading.get_ident()

    def callFromThread(self, function, *args, **kwargs) -> None:  # noqa: N802 - Twisted's name
        self.calls.put((function, args, kwargs))

    def addSystemEventTrigger(self, phase, event, function, *args) -> None:  # noqa: N802
        self.triggers.append((phase, event, function))

    def drain(self, deferred, timeout: float = 30.0):
        """Run queued calls on this (the 'reactor') thread until ``deferred`` has fired; return its result."""
        outcome = []
        deferred.addBoth(outcome.append)
        while not outcome:
            function, args, kwargs = self.calls.get(timeout=timeout)
            function(*args, **kwargs)
        return outcome[0]


class GatedLibrary:
    """A library whose ``name_for`` blocks until released, recording the threads it ran on."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[tuple] = []

    def name_for(self, prompt):
        self.calls.append((prompt, threading.get_ident()))
        assert self.release.wait(timeout=30)
        if prompt.text == "bad":
            raise AudioError('prompt "bad"', "text-to-speech failed")
        return f"tts/{prompt.text}"


@pytest.fixture
def reactor():
    return QueueReactor()


def test_concurrent_requests_for_one_prompt_share_one_job_off_the_reactor_thread(reactor):
    library = GatedLibrary()
    sounds = AsyncSounds(library, reactor=reactor)
    try:
        first, second = sounds.sound_for(TtsPrompt("hello")), sounds.sound_for(TtsPrompt("hello"))
        other = sounds.sound_for(TtsPrompt("other"))
        library.release.set()
        assert reactor.drain(first) == reactor.drain(second) == "tts/hello"
        assert reactor.drain(other) == "tts/other"
        assert sorted(prompt.text for prompt, _ in library.calls) == ["hello", "other"]
        assert all(thread != reactor.thread for _, thread in library.calls)
    finally:
        sounds.stop()


def test_a_failed_render_reaches_every_waiter_as_an_audio_error(reactor):
    library = GatedLibrary()
    sounds = AsyncSounds(library, reactor=reactor)
    try:
        waiters = [sounds.sound_for(TtsPrompt("bad")) for _ in range(2)]
        library.release.set()
        for waiter in waiters:
            failure = reactor.drain(waiter)
            assert failure.check(AudioError) and "text-to-speech failed" in str(failure.value)
        assert len(library.calls) == 1
    finally:
        sounds.stop()


def test_a_pbx_sound_is_its_name_at_once_without_a_thread(reactor):
    library = GatedLibrary()
    sounds = AsyncSounds(library, reactor=reactor)
    result = []
    sounds.sound_for(SoundPrompt("beep")).addCallback(result.append)
    assert result == ["beep"] and library.calls == [] and reactor.triggers == []


def test_the_pool_is_started_on_first_use_and_stopped_at_reactor_shutdown(reactor):
    library = GatedLibrary()
    library.release.set()
    sounds = AsyncSounds(library, reactor=reactor)
    reactor.drain(sounds.sound_for(TtsPrompt("x")))
    assert [(phase, event) for phase, event, _ in reactor.triggers] == [("during", "shutdown")]
    reactor.triggers[0][2]()   # what the reactor does when it shuts down
    sounds.stop()              # and a second stop is harmless


def test_real_library_prompts_become_names_of_existing_sounds(reactor, shared_library, sentence_name, tmp_path):
    pool = ThreadPool(minthreads=1, maxthreads=2)
    pool.start()
    sounds = AsyncSounds(shared_library, reactor=reactor, threadpool=pool)
    try:
        source = tone(tmp_path / "hold.wav", seconds=1)
        assert reactor.drain(sounds.sound_for(TtsPrompt(SENTENCE))) == sentence_name
        name = reactor.drain(sounds.sound_for(FilePrompt("hold.wav", source)))
        assert name.startswith("file/") and shared_library.is_cached_tts(SENTENCE)
        assert reactor.triggers == []   # a pool given from outside is the caller's to stop
    finally:
        pool.stop()


# --- a call never waits for other work (real TTS) -------------------------------------------------------

def test_calls_never_wait_behind_warm_ups_and_a_stop_drops_them(reactor, library):
    """Hundreds of warm-up renders queued (a script edited): a cached prompt answers at once, a call's
    render goes ahead of the queued warm-ups, and a stop drops them instead of rendering them all."""
    cached = library.tts_name(SENTENCE)
    pool = ThreadPool(minthreads=0, maxthreads=2)
    pool.start()
    sounds = AsyncSounds(library, reactor=reactor, threadpool=pool, workers=2)
    try:
        warm = [sounds.sound_for(TtsPrompt(f"Warm-up prompt number {n}."), warm=True) for n in range(300)]
        hit = sounds.sound_for(TtsPrompt(SENTENCE))
        assert hit.called and hit.result == cached                 # at once, on the reactor thread
        renders_before = library.renders
        assert reactor.drain(sounds.sound_for(TtsPrompt("A caller waits for this one."))).startswith("tts/")
        assert library.renders - renders_before <= 3               # itself, and one or two warm-ups
        assert sounds.queued > 250
        assert sounds.stop_warming() > 250 and sounds.queued == 0
        failures = [outcome for outcome in map(reactor.drain, warm) if not isinstance(outcome, str)]
        assert len(failures) > 250 and all(f.check(AudioError) and "cancelled" in str(f.value) for f in failures)
    finally:
        pool.stop()
    assert library.renders < 10                                    # not 300


def test_a_warm_up_a_call_waits_for_moves_ahead(reactor):
    library = GatedLibrary()
    sounds = AsyncSounds(library, reactor=reactor, workers=1)
    try:
        sounds.sound_for(TtsPrompt("first"), warm=True)                  # takes the only worker
        later = [sounds.sound_for(TtsPrompt(f"w{n}"), warm=True) for n in range(5)]
        wanted = sounds.sound_for(TtsPrompt("w4"))                       # a call needs a queued warm-up
        library.release.set()
        assert reactor.drain(wanted) == "tts/w4"
        assert [prompt.text for prompt, _ in library.calls][:2] == ["first", "w4"]
        assert later[4].called
    finally:
        sounds.stop()
    for dropped in later:
        dropped.addErrback(lambda failure: failure.trap(AudioError))     # made, or dropped by the stop
