"""Helpers for the MariaDB-as-a-source tests: run a migration with a given source engine, on either path."""
from __future__ import annotations

import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.dialects import get_dialect
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from shared.load import LoadSession


def execute(url: str, statements: list[str] | str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for sql in [statements] if isinstance(statements, str) else statements:
            conn.exec_driver_sql(sql.replace("%", "%%"))
    engine.dispose()


def rows_of(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.exec_driver_sql(sql.replace("%", "%%")).all()]
    engine.dispose()
    return rows


def source_engine(url: str, *, session_time_zone: str | None = None) -> sa.Engine:
    """A MariaDB engine whose sessions start in ``session_time_zone`` (as a server default would)."""
    engine = create_db_engine(url, poolclass=sa.pool.NullPool)
    if session_time_zone:
        @sa.event.listens_for(engine, "connect")
        def _zone(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute(f"SET time_zone = '{session_time_zone}'")
            cur.close()
    return engine


def move(src: sa.Engine | str, sql: str | list[StepSpec], dst_url: str, table: str, *, bulk: bool,
         mode: Mode = Mode.truncate_load, zero_dates: str = "keep",
         engines: dict[int, sa.Engine] | None = None) -> tuple[dict, list[tuple[int, str]], dict]:
    """Extraction → LoadSession as the services run them: (counts, failed (position, error), warnings)."""
    source = src if isinstance(src, sa.Engine) else create_db_engine(src, poolclass=sa.pool.NullPool)
    dst = create_db_engine(dst_url, poolclass=sa.pool.NullPool)
    fmt = get_dialect(dst.dialect.name).bulk_import_format if bulk else None
    steps = sql if isinstance(sql, list) else [StepSpec(name="read", project_id=1, sql=sql)]
    all_engines = {1: source, **(engines or {})}
    failed: list = []
    try:
        with Extraction(steps, all_engines, batch_rows=3,
                        zero_dates={pid: zero_dates for pid in all_engines}) as extraction:
            columns = extraction.open(fmt)
            session = LoadSession(dst, table=table, columns=columns, mode=mode)
            session.begin()
            try:
                if extraction.bulk:
                    for payload, count in extraction.bulk_batches(1 << 20):
                        failed += session.write_bulk(payload, count, fmt or "")
                else:
                    for rows in extraction.batches():
                        failed += session.write(rows)
                counts = session.finish().to_dict()
                session.commit()
            finally:
                session.close()
            warnings = extraction.warnings
    finally:
        if not isinstance(src, sa.Engine):
            source.dispose()
        dst.dispose()
    return counts, [(f.position, f.error) for f in failed], warnings
