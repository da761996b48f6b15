"""Load the demo catalogue (about 100 films) and a few demo users through the running services.

`make demo` (or `python -m tools.demo`): products go through the ingest service (so the embedder
workers embed them), likes, dislikes and orders through its interaction endpoints. Idempotent:
unchanged products are not re-embedded and every interaction carries an event id, so running it
again stores nothing twice. `make up` calls `load_demo` when the database is empty. It needs a
write key: --key, RECOMMENDER_KEY, or the demo tenant's write key that `make up` made.
"""
import argparse
import asyncio
import json
import logging
import os
import time
from pathlib import Path

import aiohttp

DATA_FILE = Path(__file__).parent / "demo_data" / "movies.json"

log = logging.getLogger("tools.demo")


def demo_data() -> dict:
    """`{"movies": [product...], "users": [{"id", "likes", "dislikes", "orders"}...]}`."""
    return json.loads(DATA_FILE.read_text())


def retry_after_s(response: aiohttp.ClientResponse) -> float:
    """The wait a 429 or 503 asks for (Retry-After in seconds), else one second."""
    try:
        return max(0.1, float(response.headers.get("Retry-After", 1)))
    except ValueError:
        return 1.0


async def _post(session: aiohttp.ClientSession, url: str, body: object, attempts: int = 30) -> dict:
    """POST JSON; retry while the service is starting (connection refused, 503), over the key's
    rate (429) or, for interactions, while the products are not in the catalogue yet (422)."""
    for attempt in range(1, attempts + 1):
        delay_s = 1.0
        try:
            async with session.post(url, json=body) as response:
                payload = await response.json()
                if response.status < 300:
                    return payload
                if response.status not in (422, 429, 503) or attempt == attempts:
                    raise RuntimeError(f"POST {url}: {response.status} {payload}")
                delay_s = retry_after_s(response) if response.status != 422 else 1.0
        except aiohttp.ClientConnectionError:
            if attempt == attempts:
                raise
        await asyncio.sleep(delay_s)
    raise AssertionError("unreachable")


def interactions_of(user: dict) -> list[dict]:
    events = [{"product_id": pid, "type": "like", "event_id": f"demo:{user['id']}:like:{pid}"} for pid in user["likes"]]
    events += [{"product_id": pid, "type": "dislike", "event_id": f"demo:{user['id']}:dislike:{pid}"}
               for pid in user["dislikes"]]
    return events


async def wait_embedded(session: aiohttp.ClientSession, api_url: str, product_ids: list[str], timeout_s: float) -> int:
    """Poll the api until every product is `ready`; return how many are."""
    deadline = time.monotonic() + timeout_s
    pending = list(product_ids)
    while pending and time.monotonic() < deadline:
        still = []
        for pid in pending:
            async with session.get(f"{api_url}/v1/products/{pid}") as response:
                if response.status == 429:
                    await asyncio.sleep(retry_after_s(response))
                if response.status != 200 or (await response.json())["embedding_status"] != "ready":
                    still.append(pid)
        pending = still
        if pending:
            await asyncio.sleep(1)
    return len(product_ids) - len(pending)


async def load_demo(ingest_url: str, api_url: str | None, key: str, wait_s: float = 300) -> dict:
    """Load the demo data with a write key; with `api_url`, also wait until the films are embedded.
    Returns counts."""
    data = demo_data()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
        accepted = await _post(session, f"{ingest_url}/v1/products", data["movies"])
        stored = 0
        for user in data["users"]:
            result = await _post(session, f"{ingest_url}/v1/users/{user['id']}/interactions", interactions_of(user))
            stored += result["stored"]
            for order in user["orders"]:
                body = {"user_id": user["id"], "order_id": order["order_id"],
                        "items": [{"product_id": pid, "quantity": 1} for pid in order["items"]]}
                stored += (await _post(session, f"{ingest_url}/v1/orders", body))["stored"]
        ready = None
        if api_url:
            ready = await wait_embedded(session, api_url, accepted["ids"], wait_s)
    return {"products": accepted["accepted"], "interactions_stored": stored, "users": len(data["users"]),
            "embedded": ready}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingest-url", default=os.environ.get("INGEST_URL", "http://127.0.0.1:8384"))
    parser.add_argument("--api-url", default=os.environ.get("API_URL", "http://127.0.0.1:8383"),
                        help="wait until the films are embedded (empty: do not wait)")
    parser.add_argument("--wait-s", type=float, default=300)
    parser.add_argument("--key", default=os.environ.get("RECOMMENDER_KEY"),
                        help="a write key (default: RECOMMENDER_KEY, else the demo write key of `make up`)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    key = args.key or default_key("write")
    if not key:
        raise SystemExit("no API key: pass --key or set RECOMMENDER_KEY to a write key"
                         " (`recommender keys create --tenant demo --role write`)")
    counts = asyncio.run(load_demo(args.ingest_url, args.api_url or None, key, args.wait_s))
    log.info("demo loaded: %s", counts)
    if counts["embedded"] is not None and counts["embedded"] < counts["products"]:
        raise SystemExit(f"only {counts['embedded']} of {counts['products']} films were embedded in time;"
                         " are the embedder workers running?")


def default_key(role: str) -> str | None:
    """The demo tenant's key of `role` that the native `make up` made, if any."""
    from tools.stack import Config

    return Config.from_env().demo_keys().get(role)


if __name__ == "__main__":
    main()
