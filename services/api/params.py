"""The limits of request parameters, the 400 naming one, and cursors (the parameters themselves
are pydantic models: `query.py`).

Cursors are opaque to clients: base64url JSON that carries the position and a fingerprint of the
request, so a cursor used with other filters is refused rather than silently wrong.
"""
import base64
import binascii
import hashlib
import json

from shared.errors import BadParameter

GENRE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 &'._/-]{0,63}$"
MAX_LIMIT = 100
MAX_EXCLUDE = 500


def bad(field: str, problem: str) -> BadParameter:
    return BadParameter(f"bad parameter {field}: {problem}", [{"field": field, "problem": problem}])


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
