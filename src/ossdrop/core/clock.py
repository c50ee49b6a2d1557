"""Time source passed explicitly, so signature expiry and skew checks are testable."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Returns the current time as unix seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()


class FixedClock:
    """A clock that stays where it is put (tests)."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at
