"""Bulk import: `recommender import FILE` (or `python -m tools.importer FILE`).

Reads JSON lines, a JSON array or CSV (see `tools.readers` for the column mapping), posts the
products to ingest in batches, backs off on 429/503 and lost connections, and splits out the rows
ingest rejects (a 422 names `[i].field`) so one bad row never stops the rest. With `--wait` it
then polls the api until every accepted product's embedding is `ready`.

Every request sends a write key: --key, else RECOMMENDER_KEY, else the demo write key of `make up`.
Over the key's request rate ingest answers 429 and the import waits the Retry-After it names.

Exit status: 0 every row accepted (and ready, with --wait); 1 some rows rejected or not ready in
time; 2 nothing could be done (bad options, unreadable file). Rows without an id get one from
ingest, so importing such a file twice makes two copies: map an id column for repeatable imports.
"""
import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

from tools.progress import Progress
from tools.readers import FORMATS, Mapping, ReadError, detect_format, read_rows

RETRY_STATUSES = (429, 502, 503, 504)
INDEXED_FIELD = re.compile(r"^\[(\d+)\]\.?(.*)$")


@dataclass
class Rejection:
    row: int
    reason: str


@dataclass
class Report:
    rows: int = 0
    accepted_ids: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    import_s: float = 0.0
    ready: int | None = None
    ready_s: float | None = None


class KeyRefused(RuntimeError):
    """Ingest refused the key (401/403): no other batch would fare better."""


class Importer:
    def __init__(self, session: aiohttp.ClientSession, ingest_url: str, report: Report, progress: Progress,
                 max_retries: int = 10):
        self.session = session
        self.url = f"{ingest_url.rstrip('/')}/v1/products"
        self.report = report
        self.progress = progress
        self.max_retries = max_retries

    async def post_batch(self, batch: list[tuple[int, dict]]) -> None:
        """Post until every row is accepted or rejected with a reason."""
        while batch:
            status, body = await self._post([product for _, product in batch])
            if status == 202:
                self.report.accepted_ids += body["ids"]
                self.progress.update(len(batch))
                return
            if status in (401, 403) and (body.get("error") or {}).get("code") != "quota_exceeded":
                raise KeyRefused(_message(status, body))
            bad = _rejections(batch, body) if status == 422 else {}
            if not bad:  # nothing names a row: the whole batch shares the fate
                reason = _message(status, body)
                self._reject([Rejection(row, reason) for row, _ in batch])
                return
            self._reject(list(bad.values()))
            batch = [pair for index, pair in enumerate(batch) if index not in bad]

    def _reject(self, rejections: list[Rejection]) -> None:
        self.report.rejected += rejections
        self.progress.update(len(rejections))

    async def _post(self, products: list[dict]) -> tuple[int, dict]:
        attempt = 0
        while True:
            try:
                async with self.session.post(self.url, json=products) as response:
                    if response.status in RETRY_STATUSES and response.headers.get("Retry-After", "").isdigit():
                        # Told when to come back (a full backlog, a dependency restarting): wait as
                        # long as it takes; that is what backing off means, not a failure.
                        await asyncio.sleep(_retry_after(response.headers["Retry-After"], attempt))
                        continue
                    if response.status not in RETRY_STATUSES or attempt == self.max_retries:
                        return response.status, await _json(response)
                    delay_s = _retry_after(response.headers.get("Retry-After"), attempt)
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                if attempt == self.max_retries:
                    return 0, {"error": {"message": f"ingest unreachable: {exc or type(exc).__name__}"}}
                delay_s = _retry_after(None, attempt)
            attempt += 1
            await asyncio.sleep(delay_s)


def _retry_after(header: str | None, attempt: int) -> float:
    if header and header.isdigit():
        return float(header)
    return min(30.0, 0.5 * 2 ** attempt) * random.uniform(0.8, 1.2)


async def _json(response: aiohttp.ClientResponse) -> dict:
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        body = None
    return body if isinstance(body, dict) else {"error": {"message": (await response.text())[:200]}}


def _message(status: int, body: dict) -> str:
    error = body.get("error") or {}
    return f"HTTP {status}: {error.get('message', 'no message')}" if status else error.get("message", "failed")


def _rejections(batch: list[tuple[int, dict]], body: dict) -> dict[int, Rejection]:
    """The rows a 422 names, by index in the batch, with every problem of each."""
    bad: dict[int, Rejection] = {}
    for detail in (body.get("error") or {}).get("details") or []:
        match = INDEXED_FIELD.match(str(detail.get("field", "")))
        if match is None or int(match.group(1)) >= len(batch):
            continue
        index = int(match.group(1))
        problem = f"{match.group(2) or 'row'}: {detail.get('problem', 'invalid')}"
        if index in bad:
            bad[index].reason += f"; {problem}"
        else:
            bad[index] = Rejection(batch[index][0], problem)
    return bad


async def wait_ready(session: aiohttp.ClientSession, api_url: str, ids: list[str], timeout_s: float,
                     poll_s: float = 1.0, chunk: int = 200) -> int:
    """Poll GET /v1/products/{id} (oldest first) until all are `ready` or time runs out; return how many are."""
    pending, ready = deque(dict.fromkeys(ids)), 0
    progress = Progress(len(pending), "embedded")
    deadline = time.monotonic() + timeout_s
    limit = asyncio.Semaphore(16)

    async def is_ready(product_id: str) -> bool:
        async with limit:
            try:
                async with session.get(f"{api_url.rstrip('/')}/v1/products/{product_id}") as response:
                    if response.status == 429:
                        await asyncio.sleep(_retry_after(response.headers.get("Retry-After"), 1))
                    return response.status == 200 and (await response.json()).get("embedding_status") == "ready"
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return False

    while pending and time.monotonic() < deadline:
        batch = [pending.popleft() for _ in range(min(chunk, len(pending)))]
        states = await asyncio.gather(*(is_ready(product_id) for product_id in batch))
        still = [product_id for product_id, done in zip(batch, states) if not done]
        ready += len(batch) - len(still)
        progress.update(len(batch) - len(still))
        if still:
            pending.extendleft(reversed(still))
            await asyncio.sleep(poll_s)
    progress.close()
    return ready


async def run(args: argparse.Namespace) -> Report:
    mapping = Mapping.parse(args.map, args.list_sep, keep_unmapped=not args.drop_unmapped)
    path = Path(args.file)
    report = Report()
    started = time.monotonic()
    rows = list(read_rows(path, detect_format(path, args.format), mapping))
    report.rows = len(rows)
    progress = Progress(len(rows), "imported")
    good = []
    for number, product in rows:
        if isinstance(product, ReadError):
            report.rejected.append(Rejection(number, str(product)))
            progress.update(1)
            continue
        if args.id_prefix and "id" in product:
            product["id"] = f"{args.id_prefix}{product['id']}"
        good.append((number, product))
    limit = asyncio.Semaphore(args.concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout, headers={"Authorization": f"Bearer {args.key}"}) as session:
        importer = Importer(session, args.ingest_url, report, progress, args.max_retries)

        async def one(batch: list[tuple[int, dict]]) -> None:
            async with limit:
                await importer.post_batch(batch)

        await asyncio.gather(*(one(good[i:i + args.batch_size]) for i in range(0, len(good), args.batch_size)))
        progress.close()
        report.import_s = time.monotonic() - started
        if args.wait and report.accepted_ids:
            report.ready = await wait_ready(session, args.api_url, report.accepted_ids, args.wait_timeout)
            report.ready_s = time.monotonic() - started
    return report


def print_summary(report: Report, out=sys.stdout, most: int = 20) -> None:
    print(f"{report.rows} rows: {len(report.accepted_ids)} accepted, {len(report.rejected)} rejected"
          f" in {report.import_s:.1f}s", file=out)
    for rejection in sorted(report.rejected, key=lambda r: r.row)[:most]:
        print(f"  rejected row {rejection.row}: {rejection.reason}", file=out)
    if len(report.rejected) > most:
        print(f"  ... and {len(report.rejected) - most} more (see --report)", file=out)
    if report.ready is not None:
        unique = len(set(report.accepted_ids))
        print(f"{report.ready} of {unique} accepted products ready {report.ready_s:.1f}s after the start", file=out)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recommender import", description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("--format", choices=FORMATS, help="default: from the extension (.csv, .jsonl, .json)")
    p.add_argument("--map", help="FIELD=COLUMN pairs, e.g. id=movieId,description=overview")
    p.add_argument("--list-sep", default="|", help="separator of genres in a CSV cell (default |)")
    p.add_argument("--drop-unmapped", action="store_true", help="drop columns that feed no field (default: metadata)")
    p.add_argument("--id-prefix", default="", help="prepended to every mapped id, e.g. ml-")
    p.add_argument("--ingest-url", default=os.environ.get("INGEST_URL", "http://127.0.0.1:8384"))
    p.add_argument("--api-url", default=os.environ.get("API_URL", "http://127.0.0.1:8383"))
    p.add_argument("--key", default=os.environ.get("RECOMMENDER_KEY"),
                   help="a write key (default: RECOMMENDER_KEY, else the demo write key of `make up`)")
    p.add_argument("--batch-size", type=int, default=500, help="products per request (ingest takes up to 1000)")
    p.add_argument("--concurrency", type=int, default=2, help="requests in flight")
    p.add_argument("--max-retries", type=int, default=10, help="per request, on a lost connection or a 429/503 without Retry-After"
                   " (one with Retry-After is waited out however often it comes)")
    p.add_argument("--wait", action="store_true", help="then wait until every accepted product is embedded")
    p.add_argument("--wait-timeout", type=float, default=3600.0, help="seconds (default 3600)")
    p.add_argument("--report", type=Path, help="also write the summary as JSON to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.key:
        from tools.demo import default_key

        args.key = default_key("write")
    if not args.key:
        print("error: no API key: pass --key or set RECOMMENDER_KEY to a write key", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run(args))
    except (OSError, ValueError, KeyRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_summary(report)
    if args.report:
        args.report.write_text(json.dumps(asdict(report), indent=1))
    not_ready = report.ready is not None and report.ready < len(set(report.accepted_ids))
    return 1 if report.rejected or not_ready else 0


if __name__ == "__main__":
    raise SystemExit(main())
