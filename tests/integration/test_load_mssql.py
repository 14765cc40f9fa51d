"""SQL Server destination: runs only when DM_TEST_MSSQL_URL is set (skipped otherwise, even in CI)."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.jobspec import Mode
from shared.load import LoadSession
from shared.types import Column

MSSQL_URL = os.environ.get("DM_TEST_MSSQL_URL", "")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not MSSQL_URL, reason="DM_TEST_MSSQL_URL is not set (no SQL Server here)")]


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_every_mode_into_sql_server(mode: Mode) -> None:
    engine = create_db_engine(MSSQL_URL)
    name = f"dm_load_{mode.value}"
    table = sa.Table(name, sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
                     sa.Column("name", sa.String(10), nullable=False))
    table.drop(engine, checkfirst=True)
    table.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
        session = LoadSession(engine, table=name, columns=[Column("id", "bigint"), Column("name", "text")], mode=mode)
        session.begin()
        failed = session.write([(2, "B"), (3, "c"), (4, None)])
        counts = session.finish()
        session.commit()
        session.close()
        assert [f.position for f in failed] == [3]
        with engine.connect() as conn:
            ids = conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalars().all()
        assert ids == {Mode.insert_only: [1, 2, 3], Mode.upsert: [1, 2, 3], Mode.truncate_load: [2, 3],
                       Mode.sync_delete: [2, 3]}[mode]
        assert counts.rows_failed == 1
    finally:
        table.drop(engine, checkfirst=True)
        engine.dispose()
