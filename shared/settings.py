"""Configuration shared by every service, read from ``DM_*`` environment variables.

Every variable, its default and its meaning is listed in the README; keep the two in step.
Build a settings object once in an entrypoint and pass values down explicitly.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = "./data"
DEFAULT_BATCH_ROWS = 10_000
DEFAULT_BULK_BATCH_ROWS = 100_000
DEFAULT_BATCH_QUEUE_MAX = 8
DEFAULT_HEARTBEAT_S = 5.0
DEFAULT_WORKER_LOST_S = 60.0
DEFAULT_POLL_S = 0.5


class Settings(BaseSettings):
    """Settings common to all services."""

    model_config = SettingsConfigDict(env_prefix="DM_", extra="ignore")

    data_dir: Path = Field(Path(DEFAULT_DATA_DIR), description="Where the single-process mode keeps its files.")
    database_url: str = Field("", description="Metadata store URL; empty means SQLite in data_dir.")
    amqp_url: str = Field("memory://", description="Broker URL: amqp://… for RabbitMQ, memory:// in-process.")
    queue_prefix: str = Field("datamig", description="Prefix of every queue and exchange name.")
    secret_key: str = Field("", description="Key that encrypts connection secrets (Fernet, urlsafe base64).")
    log_level: str = Field("INFO")
    log_json: bool = Field(False, description="Write logs as JSON lines.")
    batch_rows: int = Field(DEFAULT_BATCH_ROWS, ge=1, le=1_000_000,
                            description="Rows per batch when a batch carries rows of values (the general path).")
    bulk_batch_rows: int = Field(DEFAULT_BULK_BATCH_ROWS, ge=1, le=1_000_000,
                                 description="Most rows in a batch that moves as bulk text or binary COPY; such a "
                                             "batch is cut at ~4 MiB before that (shared.dialects.bulk).")
    batch_queue_max: int = Field(DEFAULT_BATCH_QUEUE_MAX, ge=1, le=10_000)
    heartbeat_s: float = Field(DEFAULT_HEARTBEAT_S, gt=0)
    worker_lost_s: float = Field(DEFAULT_WORKER_LOST_S, gt=0)
    poll_s: float = Field(DEFAULT_POLL_S, gt=0)
    api_host: str = Field("127.0.0.1")
    api_port: int = Field(8000, ge=0, le=65535)
    metrics_port: int = Field(0, ge=0, le=65535, description="Worker metrics port; 0 = no metrics server.")
    retry_base_s: float = Field(10.0, ge=0, description="Backoff before the first retry; doubles per attempt.")
    retry_max_s: float = Field(600.0, ge=0, description="Longest backoff between retries.")
    extractor_concurrency: int = Field(1, ge=1, le=64, description="Executions one extractor process runs at once.")
    loader_concurrency: int = Field(1, ge=1, le=64, description="Executions one loader process loads at once.")
    timeout_scale: float = Field(1.0, gt=0, le=1.0, description="Multiplies every job's timeout (tests shorten it).")
    admin_token: str = Field("", description="Bootstrap bearer token with the editor role (DM_ADMIN_TOKEN).")
    metrics_auth: bool = Field(False, description="Require a token on /metrics too.")
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Largest request body the API accepts.")
    bulk_text: bool = Field(True, description="Move batches as the destination's bulk text when both ends allow it.")
    bulk_binary: bool = Field(True, description="PostgreSQL to PostgreSQL: move batches in binary COPY form where "
                                                 "every column's type is exactly the destination's (with bulk_text).")
    demo: bool = Field(False, description="Create the demo databases and job on first start.")
    strict_sources: bool = Field(False, description="Refuse a source whose role can write, reach server files or "
                                                    "signal other sessions (read by shared.privileges).")
    sqlite_root: Path | None = Field(None, description="Directory every SQLite project's file must lie under; "
                                                       "empty means data_dir.")

    def metadata_url(self) -> str:
        """The metadata store URL, defaulting to a SQLite file in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'datamig.db').resolve()}"

    def sqlite_root_dir(self) -> Path:
        """The directory SQLite projects must lie under (``DM_SQLITE_ROOT``, else ``data_dir``), resolved."""
        return (self.sqlite_root or self.data_dir).resolve()


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
