"""What every aiohttp role shares: JSON errors, health routes, request metrics, body parsing."""
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from shared.errors import RETRY_AFTER_S, AppError, InvalidInput, Unavailable
from shared.outages import BROKER_DOWN, DATABASE_DOWN

log = logging.getLogger(__name__)

# A readiness check returns None when fine, else the reason the service is not ready.
ReadyCheck = Callable[[], Awaitable[str | None]]

registry_key = web.AppKey("registry", CollectorRegistry)
ready_checks_key = web.AppKey("ready_checks", list)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str = Field(description="The field, parameter or header at fault (`[3].title`, `limit`, `body`)")
    problem: str


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable, machine-readable (`invalid_input`, `not_found`, ...)")
    message: str = Field(description="For people")
    details: list[ErrorDetail]


class ErrorBody(BaseModel):
    """Every error answer of every service."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"error": {
        "code": "invalid_input", "message": "1 invalid field(s); nothing of this request was accepted",
        "details": [{"field": "[3].title", "problem": "Field required"}]}}]})

    error: ErrorInfo


def error_body(code: str, message: str, details: list | None = None) -> dict:
    """The JSON of `ErrorBody` (built directly: an error answer must not fail)."""
    return {"error": {"code": code, "message": message, "details": details or []}}


def json_error(status: int, code: str, message: str, details: list | None = None, headers=None) -> web.Response:
    return web.json_response(error_body(code, message, details), status=status, headers=headers)


@web.middleware
async def errors_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Map every failure to `{"error": {"code", "message", "details"}}`; never leak a stack trace."""
    try:
        return await handler(request)
    except Unavailable as exc:
        return json_error(exc.status, exc.code, exc.message, exc.details, {"Retry-After": str(exc.retry_after_s)})
    except AppError as exc:
        return json_error(exc.status, exc.code, exc.message, exc.details)
    except web.HTTPRequestEntityTooLarge as exc:
        return json_error(413, "body_too_large", exc.text, [{"field": "body", "problem": exc.text}])
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return json_error(exc.status, code, exc.reason, headers={k: v for k, v in exc.headers.items() if k == "Allow"})
    except DATABASE_DOWN + BROKER_DOWN as exc:
        # A dependency is down (or too slow to answer in time): the client should come back later.
        log.warning("dependency unavailable on %s %s: %s: %s", request.method, request.path, type(exc).__name__, exc)
        return json_error(503, Unavailable.code, "a service this request needs is unavailable; retry later",
                          headers={"Retry-After": str(RETRY_AFTER_S)})
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal", "internal error; it has been logged")


def setup_metrics(app: web.Application, service: str,
                  pool_in_use: Callable[[], int] | None = None) -> CollectorRegistry:
    """Per-app registry with request counts and latency by route and status, and the database
    connections in use when `pool_in_use` is given; serves `GET /metrics`."""
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests_total", "HTTP requests", ["service", "method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "http_request_duration_seconds", "HTTP request latency", ["service", "method", "route", "status"],
        registry=registry,
    )
    if pool_in_use is not None:
        in_use = Gauge("db_pool_in_use", "Database connections in use", ["service"], registry=registry)
        in_use.labels(service).set_function(pool_in_use)

    @web.middleware
    async def metrics_middleware(request: web.Request, handler) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        response = await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        requests.labels(service, request.method, route, str(response.status)).inc()
        latency.labels(service, request.method, route, str(response.status)).observe(time.perf_counter() - started)
        response.headers["X-Request-Id"] = request_id
        return response

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app[registry_key] = registry
    app.middlewares.insert(0, metrics_middleware)
    app.router.add_get("/metrics", metrics)
    return registry


def setup_health(app: web.Application, checks: list[ReadyCheck]) -> None:
    """`/health/live` answers while the process runs; `/health/ready` 503s with the reasons."""
    app[ready_checks_key] = checks

    async def live(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        problems = [problem for check in app[ready_checks_key] if (problem := await check())]
        if problems:
            return web.json_response({"status": "unavailable", "problems": problems}, status=503,
                                     headers={"Retry-After": str(RETRY_AFTER_S)})
        return web.json_response({"status": "ok"})

    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)


# A \uD800-\uDFFF escape: a lone one parses into a string that cannot be stored as UTF-8.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _not_json_number(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range for a number")
    return number


async def read_json(request: web.Request) -> object:
    """The request body as JSON; 415 without a JSON content type, 400 when it is not strict JSON:
    not UTF-8, malformed, `NaN`/`Infinity` (or a number beyond a double), nested too deeply, or a lone surrogate in a string."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType()
    body = await request.read()
    try:
        value = json.loads(body, parse_constant=_not_json_number, parse_float=_finite)
    except RecursionError:
        raise MalformedJson("the body is nested too deeply", [{"field": "body", "problem": "nested too deeply"}])
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise MalformedJson(f"the body is not valid JSON: {exc}", [{"field": "body", "problem": str(exc)}])
    if SURROGATE_ESCAPE.search(body):
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise MalformedJson("the body has a lone UTF-16 surrogate (\\uD800-\\uDFFF) in a string",
                                [{"field": "body", "problem": "lone surrogate escape"}]) from None
    return value


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"

    def __init__(self) -> None:
        super().__init__("send the body as JSON with Content-Type: application/json")


class MalformedJson(InvalidInput):
    status = 400
    code = "malformed_json"
