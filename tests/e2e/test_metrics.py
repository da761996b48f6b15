"""Every running service exposes its Prometheus series at GET /metrics."""
import aiohttp
from prometheus_client.parser import text_string_to_metric_families

HTTP_SERIES = {"http_requests_total", "http_request_duration_seconds_bucket", "db_pool_in_use"}
WORKER_SERIES = {"embedder_messages_consumed_total", "embedder_messages_retried_total",
                 "embedder_messages_dead_lettered_total", "embedder_batch_size_bucket",
                 "embedder_encode_seconds_bucket", "embedder_queue_depth", "embedder_db_pool_in_use"}


async def scrape(session: aiohttp.ClientSession, url: str) -> dict[str, list]:
    async with session.get(url) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    series: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append(sample)
    return series


async def test_api_and_ingest_count_requests_by_route_and_status_and_show_the_pool(stack):
    async with aiohttp.ClientSession() as session:
        for base, service in ((stack.api_url, "api"), (stack.ingest_url, "ingest")):
            async with session.get(f"{base}/health/ready") as response:
                assert response.status == 200
            series = await scrape(session, f"{base}/metrics")
            assert HTTP_SERIES <= series.keys(), f"{service}: missing {HTTP_SERIES - series.keys()}"
            labels = [sample.labels for sample in series["http_requests_total"]]
            assert {"service": service, "method": "GET", "route": "/health/ready", "status": "200"} in labels
            assert any(sample.labels.get("status") == "200" for sample in series["http_request_duration_seconds_bucket"])
            assert series["db_pool_in_use"][0].labels == {"service": service}


async def test_workers_expose_consumption_batches_encode_time_queue_depth_and_pool(stack):
    async with aiohttp.ClientSession() as session:
        for worker in stack.workers:
            series = await scrape(session, worker.health_url.replace("/health/ready", "/metrics"))
            assert WORKER_SERIES <= series.keys(), f"{worker.name}: missing {WORKER_SERIES - series.keys()}"
