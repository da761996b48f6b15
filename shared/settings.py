"""Settings: one pydantic-settings class per role on a shared base.

Built once in each service's `__main__` from the environment and passed down; tests build them
from keyword arguments. Every key is documented in `.env.example`.
"""
import os
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Embedder workers a machine runs by default, per core, each encoding on one thread (ENCODE_THREADS 0:
# cores // workers, at least 1). make bench PART=embed on 2 cores: 4 workers kept 0.92 of the raw
# encoder end to end in each of three runs, 2 workers 0.74, 0.84 and 1.12 (steadier with more: while
# one worker writes to the database or waits for the broker, another encodes on its core).
WORKERS_PER_CORE = 2


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_embedder_workers() -> int:
    return WORKERS_PER_CORE * available_cores()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5433/postgres"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Prefix of every exchange and queue name: lets several stacks (or test runs) share a broker.
    amqp_prefix: str = "recommender"
    model_name: str = "all-MiniLM-L6-v2"
    db_pool_min: int = Field(1, ge=0)
    db_pool_max: int = Field(10, ge=1)
    # Seconds to open a database connection, and to run one statement (None: no limit).
    db_connect_timeout_s: float = Field(3.0, gt=0)
    db_command_timeout_s: float | None = Field(None, gt=0)
    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON lines when stderr is not a terminal


class HttpSettings(Settings):
    """What ingest and api share: the mode, keys and request limits."""

    host: str = "0.0.0.0"
    # demo: the spike's /api/... routes answer without a key for DEMO_TENANT (make up's mode);
    # production: every route but health, metrics and docs needs a key.
    mode: Literal["demo", "production"] = "production"
    demo_tenant: str = "demo"
    metrics_public: bool = True  # false: /metrics needs a key like the rest
    # Seconds a key lookup is cached: a revoked key stops working within this time (at most 10).
    key_cache_s: float = Field(5.0, ge=0, le=10)
    # Per key: requests a second and the burst saved up (tenants may override both).
    rate_limit_per_s: float = Field(100.0, gt=0)
    rate_limit_burst: int = Field(200, ge=1)


class IngestSettings(HttpSettings):
    port: int = 8384
    # Live products per tenant (tenants may override it).
    catalogue_quota: int = Field(1_000_000, ge=0)
    max_body_bytes: int = 16 * 1024 * 1024
    max_batch: int = 1000
    publish_timeout_s: float = 4.0
    # Backpressure: product writes are refused (503, Retry-After) while this many messages wait for
    # the embedder workers; 0: no limit.
    max_backlog: int = Field(20_000, ge=0)
    backlog_retry_after_s: int = Field(5, ge=1)
    # Per tenant: its writes get 429 + Retry-After while this many of its products wait to be
    # embedded (counted in PostgreSQL at most once a second); 0: no per-tenant limit.
    max_tenant_backlog: int = Field(0, ge=0)
    db_command_timeout_s: float | None = Field(4.0, gt=0)


class ApiSettings(HttpSettings):
    port: int = 8383
    # How wide an HNSW query searches (shared.models: on the graph built there, 80 finds 0.967 of the exact
    # 10 nearest of the interest queries at 100,000 products).
    ef_search: int = Field(80, ge=1, le=1000)
    # Tenants whose collaborative model each api process keeps in memory (about 40 MB at 100,000 products).
    collaborative_cache_tenants: int = Field(64, ge=1)
    # Several api processes may share one port (SO_REUSEPORT; the kernel spreads connections).
    reuse_port: bool = False
    # An HTTP request never waits longer on the database than this: past it the client gets a 503.
    db_command_timeout_s: float | None = Field(4.0, gt=0)
    # A read key the web page sends (a read key is safe to ship in a page); unset: the page asks for one.
    page_key: SecretStr | None = None
    # The spike's routes without a key, for DEMO_TENANT; unset: on in demo mode only.
    open_spike_routes: bool | None = None

    @model_validator(mode="after")
    def _production_is_closed(self) -> "ApiSettings":
        if self.mode == "production" and self.open_spike_routes:
            raise ValueError("MODE=production refuses OPEN_SPIKE_ROUTES=true, demo mode's keyless /api/... routes:"
                             " unset it (the spike routes then need a key), or run with MODE=demo")
        return self

    @property
    def spike_routes_open(self) -> bool:
        return self.mode == "demo" if self.open_spike_routes is None else self.open_spike_routes


class EmbedderSettings(Settings):
    # Messages per encode call: larger batches sort by length better (less padding); 128 is ~1 s of work.
    batch_size: int = Field(128, ge=1)
    batch_wait_s: float = Field(0.2, gt=0)
    # Retries of a batch whose write failed for a transient reason, before dead-lettering it.
    max_attempts: int = Field(5, ge=1)
    retry_base_s: float = Field(0.5, gt=0)
    # While the database is unreachable a worker holds its messages unacked (no delivery counted);
    # past this many seconds it hands them back once and pauses until the database returns. Keep it
    # under the broker's consumer_timeout (30 min by default).
    outage_hold_s: float = Field(600.0, gt=0)
    host: str = "0.0.0.0"
    health_port: int = 8385  # 0: no HTTP health/metrics endpoint
    # Who runs the model: onnx-int8 (the fastest that keeps the vectors, BENCHMARKS.md), onnx-fp32 or torch.
    encoder_backend: Literal["onnx-int8", "onnx-fp32", "torch"] = "onnx-int8"
    encode_device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: a CUDA device when there is one
    # Threads of one encode; 0: this machine's cores / embedder_workers (the workers sharing them).
    encode_threads: int = Field(0, ge=0)
    embedder_workers: int = Field(1, ge=1)
    onnx_cache_dir: str | None = None  # where ONNX exports are kept; default ~/.cache/recommender/onnx
    model_path: str | None = None  # a local sentence-transformers folder; default: the packaged model
    # Other models (`recommender reembed --model NAME`): sentence-transformers folders MODELS_DIR/NAME.
    models_dir: str | None = None


class TrainerSettings(Settings):
    host: str = "0.0.0.0"
    health_port: int = 8382  # 0: no HTTP health endpoint
    train_check_s: float = Field(60.0, gt=0)
    train_after_interactions: int = Field(1000, ge=1)
    train_every_s: float = Field(86_400.0, gt=0)
    # Tenants trained at the same time: a long training of one leaves the others' slots free.
    train_concurrency: int = Field(2, ge=1)
