"""When to try a delivery again after a temporary failure.

Exponential backoff with full jitter (each wait is uniform in [0, cap]), so
that many messages refused by one busy server do not all come back at the
same second.  The random source is passed in: the core draws no randomness
of its own, and tests fix it.
"""

from __future__ import annotations

import random
from datetime import timedelta

FIRST = timedelta(minutes=1)
LONGEST = timedelta(hours=1)
# 1, 2, 4 ... 60 minutes: ten tries span about five hours, long enough to ride
# out a provider's outage, short enough that the failure shows the same day.
MAX_ATTEMPTS = 10


def retry_delay(attempt: int, *, rng: random.Random) -> timedelta:
    """The wait before try number `attempt + 1`, after `attempt` failed tries (attempt >= 1)."""
    if attempt < 1:
        raise ValueError("attempt counts failed tries and starts at 1")
    cap = min(LONGEST, FIRST * 2 ** (attempt - 1))
    # Never less than a second: an immediate retry would hit the same refusal.
    return max(timedelta(seconds=1), cap * rng.random())


def should_give_up(attempt: int) -> bool:
    return attempt >= MAX_ATTEMPTS
