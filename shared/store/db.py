"""Opening the metadata store and applying its migrations."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from shared.connections import masked_url, with_default_driver
from shared.dialects import get_dialect
from shared.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def open_store(url: str) -> sa.Engine:
    """An engine for the metadata store (SQLite gets WAL and a busy timeout).

    A URL without a driver gets ours, as project URLs do (``postgresql://`` → psycopg2).
    Raises ConfigError (one line, naming the driver) for a URL SQLAlchemy cannot load.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    try:
        parsed = with_default_driver(make_url(url))
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)
    except (ImportError, NoSuchModuleError, ValueError, ArgumentError) as exc:
        raise ConfigError(_unusable_url(url, exc)) from None


def _unusable_url(url: str, exc: Exception) -> str:
    try:
        driver = make_url(url).drivername
    except Exception:  # noqa: BLE001 - the URL itself does not parse
        return f"DM_DATABASE_URL is not a database URL ({masked_url(url)}): {exc}"
    missing = getattr(exc, "name", None)
    if isinstance(exc, ImportError):
        return (f"DM_DATABASE_URL uses the driver {driver!r}, whose module {missing or '?'!r} is not installed; "
                "use postgresql+psycopg2://… (installed) or install that driver")
    return f"DM_DATABASE_URL uses {driver!r}, which cannot be used here ({exc}); use postgresql+psycopg2://…"


def migrate(engine: sa.Engine) -> None:
    """Apply every Alembic migration (idempotent; concurrent starts are serialised on PostgreSQL)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        get_dialect(conn).serialise(conn, 727274)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def lock_rows(session: Session, stmt: sa.Select, *, skip_locked: bool = False) -> sa.Select:
    """``stmt`` locking the rows it selects where the store's engine can (see ``Dialect.lock_rows``)."""
    return stmt if session.bind is None else get_dialect(session.bind).lock_rows(stmt, skip_locked=skip_locked)


def session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
