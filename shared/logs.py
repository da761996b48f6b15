"""Logging: JSON lines when not on a terminal, plain text on one. Configured only in `__main__`."""
import json
import logging
import sys
import time
from urllib.parse import urlsplit, urlunsplit


class JsonFormatter(logging.Formatter):
    # Fields a caller may attach with `extra=` that end up in the JSON line.
    EXTRA = ("request_id", "message_id", "product_id", "attempt", "elapsed_ms", "route", "status", "count",
             "redelivered")

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in self.EXTRA:
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO", as_json: bool | None = None) -> None:
    if as_json is None:
        as_json = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "sentence_transformers", "httpx", "transformers"):
        logging.getLogger(noisy).setLevel("WARNING")


def redact(url: str) -> str:
    """A URL without its password, safe to log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
