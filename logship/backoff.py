"""Capped exponential backoff with full jitter.

Full jitter (a uniform draw between 0 and the current cap) spreads reconnecting clients apart, so a
restarted aggregator is not hit by every shipper at the same instant.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays for successive retries: uniform in [0, min(maximum, initial * factor**attempt)]."""

    def __init__(self, initial: float, maximum: float, factor: float = 2.0) -> None:
        if initial <= 0:
            raise ValueError("initial backoff must be positive")
        if maximum < initial:
            raise ValueError("maximum backoff must be at least the initial backoff")
        if factor < 1.0:
            raise ValueError("backoff factor must be at least 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._attempt = 0
        self._random = random.Random()

    @property
    def cap(self) -> float:
        """The upper bound of the next delay."""
        # min() before the power would overflow for long outages; cap the exponent instead.
        exponent = min(self._attempt, 1024)
        try:
            raw = self.initial * self.factor**exponent
        except OverflowError:
            return self.maximum
        return min(self.maximum, raw)

    @property
    def attempt(self) -> int:
        return self._attempt

    def next(self) -> float:
        """The delay before the next retry; each call widens the range until the cap is reached."""
        delay = self._random.uniform(0.0, self.cap)
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """Call after a success so the next failure starts again from `initial`."""
        self._attempt = 0
