"""Catalogue writes: validate everything first, then publish; 202 only after the broker confirmed."""
import logging
import re

from aiohttp import web

from services.ingest.keys import backlog_key, database_key, publisher_key, settings_key, version_clock_key
from services.ingest.validation import batch_items, no_duplicates, validate_all
from shared import catalog
from shared.auth import principal_key, tenant_of
from shared.errors import InvalidInput, QuotaExceeded
from shared.http import read_json
from shared.schemas import ID_PATTERN, ProductIn, ProductMessage, new_product_id

log = logging.getLogger(__name__)


def _path_id(request: web.Request) -> str:
    product_id = request.match_info["product_id"]
    if not re.fullmatch(ID_PATTERN, product_id):
        raise InvalidInput(
            "invalid product id",
            [{"field": "id", "problem": "1-128 characters: letters, digits and . _ : - (not first)"}],
        )
    return product_id


async def _check_quota(request: web.Request, tenant_id: str, products: list[ProductIn]) -> None:
    """Refuse, before anything is queued, a write that would take the tenant past its catalogue quota."""
    quota = request[principal_key].catalogue_quota
    quota = request.app[settings_key].catalogue_quota if quota is None else quota
    ids = sorted({p.id for p in products if p.id is not None})
    live, known = await catalog.live_count(request.app[database_key].require(), tenant_id, ids)
    added = len(ids) - known + sum(p.id is None for p in products)
    if live + added > quota:
        raise QuotaExceeded(
            f"catalogue quota exceeded: the quota is {quota} products, the catalogue holds {live} and this request"
            f" adds {added}; nothing of this request was accepted (delete products or ask for a larger quota)",
            [{"field": "body", "problem": f"catalogue_quota {quota} products"}],
        )


async def _accept(request: web.Request, products: list[ProductIn]) -> web.Response:
    tenant_id = tenant_of(request)
    await _check_quota(request, tenant_id, products)
    clock = request.app[version_clock_key]
    messages = []
    for product in products:
        if product.id is None:
            product.id = new_product_id()
        messages.append(
            ProductMessage(
                type="product.upsert",
                tenant_id=tenant_id,
                product_id=product.id,
                version=clock.next(),
                product=product,
            )
        )
    if (backlog := request.app.get(backlog_key)) is not None:
        await backlog.admit(tenant_id, len(messages))
    await request.app[publisher_key].publish(messages)
    await _record_pending(request, tenant_id, messages)
    return web.json_response({"accepted": len(messages), "ids": [m.product_id for m in messages]}, status=202)


async def _record_pending(request: web.Request, tenant_id: str, messages: list[ProductMessage]) -> None:
    """Show accepted products as `pending` right away. Best effort: the queue is the record."""
    pool = request.app[database_key].pool
    if pool is None:
        return
    try:
        async with pool.acquire() as conn:
            await catalog.upsert_products(conn, tenant_id, [(m.product, m.version) for m in messages])
    except Exception as exc:  # the data is safe in the queue; the worker writes the row
        log.warning("could not record %d pending product(s): %s", len(messages), exc)


async def post_products(request: web.Request) -> web.Response:
    items, is_list = batch_items(await read_json(request), request.app[settings_key].max_batch, "products")
    products = validate_all(ProductIn, items, is_list)
    no_duplicates([p.id for p in products], "[{}].id" if is_list else "id", "id")
    return await _accept(request, products)


async def put_product(request: web.Request) -> web.Response:
    product_id = _path_id(request)
    body = await read_json(request)
    [product] = validate_all(ProductIn, [body], is_list=False)
    if product.id is not None and product.id != product_id:
        raise InvalidInput("the body's id differs from the path's", [{"field": "id", "problem": "must equal the id in the path"}])
    product.id = product_id
    return await _accept(request, [product])


async def delete_product(request: web.Request) -> web.Response:
    product_id = _path_id(request)
    message = ProductMessage(
        type="product.delete",
        tenant_id=tenant_of(request),
        product_id=product_id,
        version=request.app[version_clock_key].next(),
    )
    await request.app[publisher_key].publish([message])
    return web.json_response({"accepted": 1, "ids": [product_id]}, status=202)
