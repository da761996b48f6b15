"""A small progress bar on stderr: redrawn in place on a terminal, a line every 10% elsewhere."""
import sys
import time


class Progress:
    def __init__(self, total: int, label: str, stream=None, width: int = 30):
        self.total = max(total, 0)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self._tty = self.stream.isatty()
        self._drawn_at = 0.0
        self._decile = -1

    def update(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self._tty and now - self._drawn_at >= 0.2:
            self._drawn_at = now
            self.stream.write("\r" + self._line())
            self.stream.flush()
        elif not self._tty and self.total and (decile := self.done * 10 // self.total) > self._decile:
            self._decile = decile
            print(self._line(), file=self.stream, flush=True)

    def _line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        filled = int(share * self.width)
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        return f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} {rate:.1f}/s"

    def close(self) -> None:
        if self._tty:
            self.stream.write("\r" + self._line() + "\n")
            self.stream.flush()
