"""Makes the standard sounds in this folder from their definitions in autocall/audio/standard.py.

Run from the top of the source tree: ``.venv/bin/python prompts/make_prompts.py``.
The output is deterministic: running it again rewrites the same bytes.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from autocall.audio.standard import EXTENSIONS, beep_pcm  # noqa: E402  (after the path set-up)


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    for ext, rate in EXTENSIONS.items():
        path = os.path.join(here, "beep" + ext)
        with open(path, "wb") as stream:
            stream.write(beep_pcm(rate))
        print(f"wrote {os.path.relpath(path)} ({rate} Hz)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
