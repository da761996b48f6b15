"""Per-key token buckets: `rate_per_s` tokens a second, at most `burst` saved up, one per request.

In memory, per process: with N replicas of a service a key may make up to N times the rate.
"""
import time
from collections.abc import Callable


class TokenBuckets:
    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)

    def take(self, key: str, rate_per_s: float, burst: int) -> float:
        """Take one token: 0 when granted, else the seconds until one is available."""
        now = self.clock()
        tokens, then = self._buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - then) * rate_per_s)
        if tokens >= 1:
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._forget_idle(now)
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / rate_per_s

    def _forget_idle(self, now: float, idle_s: float = 600.0) -> None:
        """Drop buckets idle for minutes: they have refilled, so forgetting them changes nothing."""
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < idle_s}
