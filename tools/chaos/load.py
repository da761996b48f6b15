"""Posting the chaos catalogue through ingest at full speed, backing off when told to."""
import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

WORDS = ("river", "pirate", "galaxy", "detective", "dragon", "orchestra", "desert", "robot", "winter",
         "circus", "volcano", "lighthouse", "samurai", "violin", "jungle", "submarine", "castle", "ghost")


def catalogue(prefix: str, n: int) -> list[dict]:
    rng = random.Random(prefix)
    return [
        {
            "id": f"{prefix}-{i}",
            "title": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {i}",
            "description": f"A story about a {' and a '.join(rng.sample(WORDS, 4))}, told in part {i}.",
            "genres": [rng.choice(["Drama", "Comedy", "Action"])],
            "year": 1950 + i % 70,
        }
        for i in range(n)
    ]


@dataclass
class LoadResult:
    accepted: set[str] = field(default_factory=set)
    refused_by_status: Counter = field(default_factory=Counter)
    connection_errors: int = 0


async def post_all(ingest_url: str, products: list[dict], key: str, batch: int = 100, clients: int = 8,
                   result: LoadResult | None = None) -> LoadResult:
    """POST every product (batches, `clients` at once); a refused batch is retried after Retry-After
    until it is accepted, so every product ends up accepted. `result` fills in as it goes."""
    result = result if result is not None else LoadResult()
    batches = asyncio.Queue()
    for start in range(0, len(products), batch):
        batches.put_nowait(products[start:start + batch])

    async def client(session: aiohttp.ClientSession) -> None:
        while not batches.empty():
            items = batches.get_nowait()
            while True:
                try:
                    async with session.post(f"{ingest_url}/v1/products", json=items) as response:
                        if response.status == 202:
                            result.accepted.update((await response.json())["ids"])
                            break
                        result.refused_by_status[str(response.status)] += 1
                        if response.status not in (429, 502, 503, 504):
                            raise RuntimeError(f"ingest answered {response.status}: {(await response.text())[:300]}")
                        retry_after = response.headers.get("Retry-After", "")
                        await asyncio.sleep(float(retry_after) if retry_after.isdigit() else 1.0)
                except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                    result.connection_errors += 1
                    await asyncio.sleep(1.0)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, headers={"Authorization": f"Bearer {key}"}) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return result
