"""Interactions and orders: validated, checked against the catalogue, stored in one transaction."""
import re

from aiohttp import web
from pydantic import ValidationError

from services.ingest import interactions
from services.ingest.keys import database_key, settings_key
from services.ingest.validation import batch_items, no_duplicates, validate_all
from shared.auth import tenant_of
from shared.errors import InvalidInput
from shared.http import read_json
from shared.schemas import ID_PATTERN, InteractionIn, OrderIn, error_details


def _user_id(request: web.Request) -> str:
    user_id = request.match_info["user_id"]
    if not re.fullmatch(ID_PATTERN, user_id):
        raise InvalidInput(
            "invalid user id", [{"field": "user_id", "problem": "1-128 characters: letters, digits and . _ : -"}]
        )
    return user_id


async def _store(request: web.Request, tenant_id: str, user_id: str, events: list[InteractionIn],
                 fields: list[str]) -> int:
    """Store all events, or none: a 422 names every product that is not in the catalogue."""
    pool = request.app[database_key].require()
    async with pool.acquire() as conn, conn.transaction():
        unknown = await interactions.unknown_products(conn, tenant_id, [e.product_id for e in events])
        if unknown:
            details = [
                {"field": field, "problem": f"unknown product {event.product_id!r}"}
                for field, event in zip(fields, events)
                if event.product_id in unknown
            ]
            raise InvalidInput(f"{len(unknown)} unknown product(s); nothing was stored", details)
        return await interactions.store(conn, tenant_id, user_id, events)


async def post_interactions(request: web.Request) -> web.Response:
    user_id = _user_id(request)
    items, is_list = batch_items(await read_json(request), request.app[settings_key].max_batch, "interactions")
    events = validate_all(InteractionIn, items, is_list)
    fields = [f"[{i}].product_id" if is_list else "product_id" for i in range(len(events))]
    stored = await _store(request, tenant_of(request), user_id, events, fields)
    return web.json_response({"user_id": user_id, "received": len(events), "stored": stored}, status=201)


async def post_order(request: web.Request) -> web.Response:
    try:
        order = OrderIn.model_validate(await read_json(request))
    except ValidationError as exc:
        raise InvalidInput("invalid order; nothing was stored", error_details(exc))
    no_duplicates([item.product_id for item in order.items], "items[{}].product_id", "product")
    events = [
        InteractionIn(
            product_id=item.product_id,
            type="purchase",
            value=item.quantity,
            occurred_at=order.occurred_at,
            event_id=None if order.order_id is None else f"order:{order.order_id}:{item.product_id}",
        )
        for item in order.items
    ]
    fields = [f"items[{i}].product_id" for i in range(len(events))]
    stored = await _store(request, tenant_of(request), order.user_id, events, fields)
    return web.json_response(
        {"user_id": order.user_id, "order_id": order.order_id, "received": len(events), "stored": stored}, status=201
    )
