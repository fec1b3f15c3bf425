"""The audio error: which file (or voice, or prompt) is wrong, and what is wrong with it."""

from __future__ import annotations

from autocall.errors import UserError


class AudioError(UserError):
    """``file`` names the thing at fault; ``problem`` says what is wrong and the limit or fix, without the name.

    The compiler shows ``problem`` at the line of the declaration; everyone
    else shows ``str(exc)``, which is ``f"{file}: {problem}"`` on one line.
    """

    def __init__(self, file: str, problem: str) -> None:
        self.file = str(file)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.file}: {self.problem}")

    def __reduce__(self):
        # Exceptions pickle their ``args`` (the joined message) by default, which
        # would not fit this two-argument constructor (thread pools, Twisted failures).
        return (type(self), (self.file, self.problem))


def cannot_write(exc: OSError, where: str) -> AudioError:
    """The error for a sounds folder that cannot be written: a setting to fix, not a crash."""
    return AudioError(exc.filename or where,
                      f"cannot write sounds ({exc.strerror or exc.__class__.__name__}); "
                      f"check the sounds_dir and tts_cache_dir settings")
