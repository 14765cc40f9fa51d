"""The SQL Server suite's helpers: engines disposed after each test, and moving rows the way
the workers do (the extractor's batches into the loader's session, in one process)."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from shared.load import FailedRow, LoadCounts, LoadSession


@pytest.fixture
def engines() -> Iterator[Callable[..., sa.Engine]]:
    """Factory of engines (any engine, URL as given) disposed after the test."""
    made: list[sa.Engine] = []

    def make(url: str, **kwargs: object) -> sa.Engine:
        made.append(create_db_engine(url, **kwargs))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def ms(mssql_url: str, engines: Callable[..., sa.Engine]) -> sa.Engine:
    """An engine on a fresh SQL Server database."""
    return engines(mssql_url)


def move(steps: list[StepSpec], sources: Mapping[int, sa.Engine], dest: sa.Engine, *, table: str, mode: Mode,
         key_columns: list[str] | None = None, batch_rows: int = 3) -> tuple[LoadCounts, list[FailedRow]]:
    """Extract ``steps`` and load the final result into ``dest.table``, committed; (counts, failed rows)."""
    failed: list[FailedRow] = []
    with Extraction(steps, sources, batch_rows=batch_rows) as ext:
        columns = ext.open()
        session = LoadSession(dest, table=table, columns=columns, mode=mode, key_columns=key_columns)
        session.begin()
        try:
            for batch in ext.batches():
                failed += session.write(batch)
            counts = session.finish()
            session.commit()
        finally:
            session.close()
    return counts, failed


def temp_tables_left(engine: sa.Engine, prefix: str) -> int:
    """``#prefix...`` temporary tables of ANY session on the server (tempdb is shared)."""
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT COUNT(*) FROM tempdb.sys.objects WHERE type = 'U' AND name LIKE ?",
                                        (prefix.replace("_", "[_]") + "%",)).scalar_one())
