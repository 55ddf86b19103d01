"""Test-only crash points: AM_PATCH_TEST_CRASH_AT=<name> kills the run there with SIGKILL."""

from __future__ import annotations

import os
import signal

ENV = "AM_PATCH_TEST_CRASH_AT"


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
