"""The published contract: each service's route table, registered with aiohttp and described as
OpenAPI 3.1 at `/openapi.json` from the same pydantic models the handlers validate with.

A `Route` names its handler, the model of its JSON body (`body`, with `batch` when an array of up to
`max_batch` of them is accepted too), the model of its query string (`query`), the model of its
answer and the error statuses it may give besides those every route of its kind gives. Path
parameters are ids (`shared.schemas.ProductId`). `/docs` renders the document with the Swagger UI
files of the `swagger-ui-py` package, served from here (no CDN).
"""
import html
import importlib.resources
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from shared.http import ErrorBody
from shared.schemas import ProductId

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REF = "#/components/schemas/{model}"
PATH_ID = TypeAdapter(ProductId).json_schema()
BODY_ERRORS = (400, 413, 415, 422)  # malformed JSON, too large, not JSON, invalid fields
AUTH_ERRORS = (401, 403, 429)
ERROR_HEADERS = {
    401: {"WWW-Authenticate": "The Bearer challenge"},
    429: {"Retry-After": "Seconds to wait before sending again"},
    503: {"Retry-After": "Seconds after which a retry may succeed"},
}
DOCS_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    response: type[BaseModel] | None = None
    status: int = 200
    body: type[BaseModel] | None = None
    batch: bool = False
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    role: str | None = None  # the key's role it needs; None: public
    description: str = ""

    @property
    def operation_id(self) -> str:
        return getattr(self.handler, "__name__", self.summary).strip("_")


routes_key = web.AppKey("routes", list)


def add_routes(app: web.Application, routes: list[Route]) -> None:
    """Register the routes with the app's router and remember them for the document."""
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
    app.setdefault(routes_key, []).extend(routes)


def _error_name(status: int) -> str:
    return HTTPStatus(status).phrase.replace(" ", "").replace("-", "")


def _error_response(status: int) -> dict:
    response = {
        "description": HTTPStatus(status).phrase,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}},
    }
    if status in ERROR_HEADERS:
        response["headers"] = {name: {"description": text, "required": True, "schema": {"type": "string"}}
                               for name, text in ERROR_HEADERS[status].items()}
    return response


def _query_schema(field: dict) -> dict:
    """A query field's schema: a query string has no null (absent is the default), no arrays or objects."""
    field = {key: value for key, value in field.items() if key != "title"}
    options = [option for option in field.pop("anyOf", []) if option.get("type") not in ("null", "array", "object")]
    if len(options) == 1:
        field = {**options[0], **field}
    elif options:
        field["anyOf"] = options
    if field.get("default", 0) is None or isinstance(field.get("default"), (list, dict)):
        del field["default"]
    return field


def _query_parameters(model: type[BaseModel]) -> list[dict]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": _query_schema(field),
         **({} if name in required else {"allowEmptyValue": True}),  # an empty value counts as absent
         **({"description": field["description"]} if "description" in field else {})}
        for name, field in schema["properties"].items()
    ]


def _path_parameters(path: str) -> list[dict]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
    return [{"name": name, "in": "path", "required": True, "schema": PATH_ID} for name in names]


def _request_body(route: Route, max_batch: int) -> dict:
    one = {"$ref": REF.format(model=route.body.__name__)}
    schema = one
    if route.batch:
        schema = {"anyOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": max_batch}]}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _operation(route: Route, max_batch: int, secured: bool) -> dict:
    ok = {"description": HTTPStatus(route.status).phrase}
    if route.response is not None:
        ok["content"] = {"application/json": {"schema": {"$ref": REF.format(model=route.response.__name__)}}}
    errors = set(route.errors) | {503}
    if route.body is not None:
        errors |= set(BODY_ERRORS)
    if route.query is not None or _path_parameters(route.path):
        errors.add(400)
    needs_key = secured and route.role is not None
    if needs_key:
        errors |= set(AUTH_ERRORS)
    operation = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": _path_parameters(route.path) + (_query_parameters(route.query) if route.query else []),
        "responses": {str(route.status): ok}
        | {str(status): {"$ref": f"#/components/responses/{_error_name(status)}"} for status in sorted(errors)},
    }
    if route.description:
        operation["description"] = route.description
    if route.body is not None:
        operation["requestBody"] = _request_body(route, max_batch)
    operation["security"] = [{"bearer": []}] if needs_key else []
    if needs_key:
        operation["description"] = (operation.get("description", "") + f"\n\nNeeds a key with role `{route.role}`.").strip()
    return operation


def document(title: str, version: str, description: str, routes: list[Route], max_batch: int = 1000,
             secured: bool = True) -> dict:
    """The OpenAPI 3.1 document of the routes; `secured`: routes with a role need a key."""
    models = {m for r in routes for m in (r.body, r.response) if m is not None} | {ErrorBody}
    _, schemas = models_json_schema(
        [(model, "validation" if model in {r.body for r in routes} else "serialization")
         for model in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    paths: dict[str, dict] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, max_batch, secured)
    statuses = {int(s) for path in paths.values() for op in path.values() for s in op["responses"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "responses": {_error_name(s): _error_response(s) for s in sorted(statuses) if s >= 400},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "An API key: `Authorization: Bearer <key>`"}},
        },
    }


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#docs", deepLinking: true, validatorUrl: null,
                             tryItOutEnabled: false, persistAuthorization: false}});
</script>
</body>
</html>
"""


def setup_docs(app: web.Application, title: str, version: str, description: str, max_batch: int = 1000,
               secured: bool = True) -> None:
    """`GET /openapi.json` (the document of the app's routes) and `GET /docs` (a page rendering it)."""
    assets = importlib.resources.files("swagger_ui") / "static"
    built: list[dict] = []  # the document, made on the first request (once every route is added)

    async def openapi_json(request: web.Request) -> web.Response:
        if not built:
            built.append(document(title, version, description, request.app[routes_key], max_batch, secured))
        return web.json_response(built[0])

    async def docs_page(request: web.Request) -> web.Response:
        return web.Response(text=DOCS_PAGE.format(title=html.escape(title)), content_type="text/html")

    async def docs_asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in DOCS_FILES:
            raise web.HTTPNotFound()
        return web.Response(body=(assets / name).read_bytes(), content_type=DOCS_FILES[name],
                            headers={"Cache-Control": "public, max-age=86400"})

    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs_page)
    app.router.add_get("/docs/{name}", docs_asset)
