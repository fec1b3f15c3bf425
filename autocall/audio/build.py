"""``prompts build``: make every given prompt's sound ahead of time, with a progress bar on a terminal."""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Iterable

from autocall.audio.errors import AudioError
from autocall.audio.worker import prompt_label
from autocall.engine.channel import FilePrompt, Prompt, SoundPrompt


@dataclass(frozen=True)
class Placed:
    """Where one prompt's sound is: ``prompt`` as errors name it, ``name`` as Asterisk plays it (under sounds_dir)."""

    prompt: str
    name: str
    made: bool


@dataclass
class BuildReport:
    """What a build did: sounds made now, found already made, and one message per prompt that failed."""

    rendered: int = 0
    cached: int = 0
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    placed: list[Placed] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return f"{self.rendered} rendered, {self.cached} already cached, {len(self.failed)} failed"


def build_prompts(prompts: Iterable[Prompt], library, progress: bool, workers: int | None = None) -> BuildReport:
    """Prepare each distinct prompt with ``library`` (a ``SoundLibrary``); PBX sounds (``SoundPrompt``) are skipped.

    Up to ``workers`` prompts are prepared at once (TTS renders queue for the
    one worker process; ffmpeg conversions overlap). Messages keep the order
    of the prompts, whatever order the jobs finish in.
    """
    todo = list(dict.fromkeys(p for p in prompts if not isinstance(p, SoundPrompt)))
    report = BuildReport()
    outcomes: dict[int, object] = {}
    workers = workers or min(4, os.cpu_count() or 1)
    with _progress_bar(progress, len(todo)) as advance, ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = {pool.submit(library.prepare, prompt): index for index, prompt in enumerate(todo)}
        for job in as_completed(jobs):
            try:
                outcomes[jobs[job]] = job.result()
            except AudioError as exc:
                outcomes[jobs[job]] = exc
            advance()
    for index, prompt in enumerate(todo):
        outcome = outcomes[index]
        if isinstance(outcome, AudioError):
            report.failed.append(str(outcome))
            continue
        if outcome.made:
            report.rendered += 1
        else:
            report.cached += 1
        where = prompt.path if isinstance(prompt, FilePrompt) else outcome.name
        report.warnings += [f"{where}: {warning}" for warning in outcome.warnings]
        label = prompt.path if isinstance(prompt, FilePrompt) else prompt_label(prompt.text)
        report.placed.append(Placed(label, outcome.name, outcome.made))
    return report


@contextlib.contextmanager
def _progress_bar(shown: bool, total: int):
    """Yield ``advance()``: a rich progress bar on stderr when ``shown``, else a no-op."""
    if not (shown and total):
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    bar = Progress(TextColumn("rendering prompts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True))
    task = bar.add_task("prompts", total=total)
    with bar:
        yield lambda: bar.advance(task)
