"""Authentication for ingest and api: `Authorization: Bearer <key>` on every route but the public ones.

The middleware resolves the key to its tenant and role once per request and stores it under
`principal_key`; views take the tenant from `tenant_of(request)` and pass it down, nothing else
decides the tenant. Failures answer in the JSON error shape: 401 (with `WWW-Authenticate: Bearer`)
for a missing, malformed, unknown or revoked key, 403 for too small a role, 429 (with
`Retry-After`) over the key's rate, 400 for a key in the URL (which is not logged).
"""
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from shared import keys
from shared.http import json_error
from shared.keys import KeyRecord
from shared.ratelimit import TokenBuckets
from shared.settings import HttpSettings

log = logging.getLogger(__name__)

principal_key = web.RequestKey("principal", KeyRecord)

PUBLIC_PATHS = frozenset({"/openapi.json", "/docs"})
PUBLIC_PREFIXES = ("/health/", "/docs/")
QUERY_KEY_NAMES = frozenset({"key", "api_key", "apikey", "api-key", "access_token", "token", "authorization"})
BEARER = re.compile(r"Bearer +(\S+) *", re.IGNORECASE)
MAX_CACHED = 10_000


def tenant_of(request: web.Request) -> str:
    """The tenant of the request: the one place views get it from."""
    return request[principal_key].tenant_id


@dataclass(frozen=True)
class Policy:
    """What a service asks of its routes: the role for a request (None: public), and the tenant that
    answers a request without a key (demo mode's spike routes; None: a key is needed)."""

    role_for: Callable[[web.Request], str | None]
    keyless_tenant: Callable[[web.Request], str | None] = lambda request: None


def public(settings: HttpSettings, request: web.Request, extra_prefixes: tuple[str, ...] = ()) -> bool:
    path = request.path
    if path == "/metrics":
        return settings.metrics_public
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES + extra_prefixes)


class KeyCache:
    """Key lookups cached for `ttl_s` seconds (unknown keys too, so guessing costs no queries):
    a revoked key stops working on this process within `ttl_s`."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self.pool, self.ttl_s, self.clock = pool, ttl_s, clock
        self._entries: dict[bytes, tuple[float, KeyRecord | None]] = {}

    async def lookup(self, key: str) -> KeyRecord | None:
        return await self._cached(keys.key_hash(key), lambda pool: keys.lookup(pool, key))

    async def tenant(self, tenant_id: str) -> KeyRecord | None:
        return await self._cached(f"tenant:{tenant_id}".encode(), lambda pool: keys.tenant_record(pool, tenant_id))

    async def _cached(self, digest: bytes, query) -> KeyRecord | None:
        now = self.clock()
        cached = self._entries.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self._query(query)
        self._remember(digest, record, now)
        return record

    async def _query(self, query):
        # Unavailable while the pool is not open; a database outage maps to 503 in errors_middleware.
        return await query(self.pool())

    def _remember(self, digest: bytes, record: KeyRecord | None, now: float) -> None:
        if len(self._entries) >= MAX_CACHED:
            self._entries = {d: e for d, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= MAX_CACHED:
                self._entries.clear()
        self._entries[digest] = (now + self.ttl_s, record)


def _unauthorized(message: str, invalid: bool) -> web.Response:
    challenge = 'Bearer realm="recommender"' + (', error="invalid_token"' if invalid else "")
    return json_error(401, "unauthorized", message, [{"field": "Authorization", "problem": message}],
                      {"WWW-Authenticate": challenge})


def key_in_query(request: web.Request) -> bool:
    return (any(name.lower() in QUERY_KEY_NAMES for name in request.query)
            or keys.KEY_PATTERN.search(request.query_string) is not None)


def auth_middleware(settings: HttpSettings, cache: KeyCache, policy: Policy,
                    buckets: TokenBuckets | None = None):
    buckets = buckets or TokenBuckets()

    @web.middleware
    async def authenticate(request: web.Request, handler) -> web.StreamResponse:
        if key_in_query(request):
            return json_error(400, "key_in_query",
                              "send the key in the Authorization header, never in the URL (URLs end up in logs"
                              " and browser history); treat a key sent this way as exposed and revoke it",
                              [{"field": "query", "problem": "holds an API key"}])
        role = policy.role_for(request)
        if role is None:
            return await handler(request)
        header = request.headers.get("Authorization")
        if header is None:
            tenant_id = policy.keyless_tenant(request)
            record = await cache.tenant(tenant_id) if tenant_id is not None else None
            if record is None:
                return _unauthorized("send an API key: Authorization: Bearer <key>", invalid=False)
        else:
            match = BEARER.fullmatch(header)
            if match is None:
                return _unauthorized("malformed Authorization header: expected 'Bearer <key>'", invalid=True)
            record = await cache.lookup(match.group(1))
            if record is None:
                return _unauthorized("unknown or revoked API key", invalid=True)
        if not record.allows(role):
            return json_error(403, "forbidden", f"this key's role {record.role!r} may not do this; it needs {role!r}",
                              [{"field": "Authorization", "problem": f"role {record.role} < {role}"}])
        wait_s = buckets.take(record.key_id, record.rate_per_s or settings.rate_limit_per_s,
                              record.rate_burst or settings.rate_limit_burst)
        if wait_s > 0:
            retry_after = max(1, math.ceil(wait_s))
            return json_error(429, "rate_limited", f"too many requests for this key; retry in {retry_after} s",
                              [{"field": "Authorization", "problem": "over the key's request rate"}],
                              {"Retry-After": str(retry_after)})
        request[principal_key] = record
        return await handler(request)

    return authenticate


def setup_auth(app: web.Application, settings: HttpSettings, pool: Callable[[], asyncpg.Pool], policy: Policy,
               cache: KeyCache | None = None) -> None:
    """Add the middleware (after the error mapping) with a key cache of its own (tests may pass another)."""
    app.middlewares.append(auth_middleware(settings, cache or KeyCache(pool, settings.key_cache_s), policy))
    if settings.mode == "demo":
        async def announce(app: web.Application) -> None:
            log.warning("DEMO MODE: the spike's /api/... routes answer for tenant %r without a key and the web page"
                        " carries a read key; set MODE=production for real use", settings.demo_tenant)

        app.on_startup.append(announce)
