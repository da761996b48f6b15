"""The worker's Prometheus series."""
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter("embedder_messages_consumed_total", "Messages taken from the queue", registry=r)
        self.retried = Counter("embedder_messages_retried_total", "Message attempts that failed transiently", registry=r)
        self.dead_lettered = Counter("embedder_messages_dead_lettered_total", "Messages given up on (dead letters)",
                                     registry=r)
        self.dead_letters = Gauge("embedder_dead_letters", "Dead letters waiting for a person", registry=r)
        self.outages = Counter("embedder_database_outages_total",
                               "Times a batch was held because the database was unreachable", registry=r)
        self.embedded = Counter("embedder_products_embedded_total", "Vectors computed and stored", registry=r)
        self.batch_size = Histogram("embedder_batch_size", "Messages per batch", registry=r,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.encode_seconds = Histogram("embedder_encode_seconds", "Seconds per encode call", registry=r)
        self.queue_depth = Gauge("embedder_queue_depth", "Messages ready in the work queue", registry=r)
        self.db_pool_in_use = Gauge("embedder_db_pool_in_use", "Database connections in use", registry=r)

    def observe_batch(self, size: int, embedded: int, encode_s: float) -> None:
        self.batch_size.observe(size)
        self.embedded.inc(embedded)
        if embedded:
            self.encode_seconds.observe(encode_s)
