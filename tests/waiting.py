"""Waiting in tests: every wait has a deadline and fails saying what it waited for."""
import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def wait_for(check: Callable[[], Awaitable[object] | object], timeout_s: float, what: str, every_s: float = 0.3):
    """Poll `check` until it returns something truthy (returned); AssertionError naming `what` after
    `timeout_s` seconds, with the last value seen."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s:.0f}s waiting for {what} (last seen: {last!r})")
        await asyncio.sleep(every_s)
