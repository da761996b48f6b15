"""Parameters of the catalogue routes and cursors: a 400 naming the parameter when bad.

Recommendation queries are pydantic models (`query.py`).

Cursors are opaque to clients: base64url JSON that carries the position and a fingerprint of the
request, so a cursor used with other filters is refused rather than silently wrong.
"""
import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping

from shared.errors import BadParameter

GENRE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 &'._/-]{0,63}$"
MAX_LIMIT = 100
MAX_EXCLUDE = 500


def bad(field: str, problem: str) -> BadParameter:
    return BadParameter(f"bad parameter {field}: {problem}", [{"field": field, "problem": problem}])


def integer(params: Mapping, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise bad(name, f"must be an integer from {low} to {high}") from None
    if not low <= value <= high or isinstance(raw, bool):
        raise bad(name, f"must be an integer from {low} to {high}")
    return value


def limit(params: Mapping, default: int = 10) -> int:
    return integer(params, "limit", default, 1, MAX_LIMIT)


def genre(params: Mapping, field: str = "genre") -> str | None:
    value = params.get("genre")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.fullmatch(GENRE_PATTERN, value):
        raise bad(field, "1-64 characters: letters, digits, spaces and & ' . _ / - (not first)")
    return value


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_cursor(position: dict, fingerprint_: str) -> str:
    raw = json.dumps({**position, "f": fingerprint_}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str | None, fingerprint_: str, keys: dict[str, type]) -> dict | None:
    """The position a cursor carries, or None without one; 400 when malformed or from another request."""
    if not value:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad("cursor", "malformed; pass next_cursor from the previous page unchanged") from None
    if not isinstance(position, dict) or not all(isinstance(position.get(k), t) for k, t in keys.items()):
        raise bad("cursor", "malformed; pass next_cursor from the previous page unchanged")
    if position.get("f") != fingerprint_:
        raise bad("cursor", "belongs to a request with other parameters")
    return position
