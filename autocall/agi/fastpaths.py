"""One switch for every fast path of the FastAGI layer; each gives exactly what its plain path gives.

The fast paths: the one-pass environment parse and the one-segment shortcuts
``quick_environment``/``quick_reply`` (``protocol``), the call's coroutine
driven without Deferreds (``_CallTask``) and commands written straight to the
socket (``connection``). Their state changes read the same transition table
as the plain path. ``enabled = False`` (or ``AUTOCALL_AGI_FAST_PATHS=0`` in the
environment) turns them all off: the AGI and server test suites run both ways,
and an operator chasing a problem can rule them out.
"""

from __future__ import annotations

import os

enabled: bool = os.environ.get("AUTOCALL_AGI_FAST_PATHS", "1") != "0"
