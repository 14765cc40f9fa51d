"""Engines kept across executions (shared.engine_cache): one per exact URL and use, connections
reused only as fresh sessions, nothing about the destination cached with them."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.engine_cache import EngineCache, is_cached
from shared.errors import ValidationFailed
from shared.extract import Extraction
from shared.jobspec import Mode, StepSpec
from shared.load import LoadSession
from shared.types import Column

pytestmark = pytest.mark.integration
COLUMNS = [Column("id", "bigint"), Column("name", "text")]


@pytest.fixture
def cache(databases) -> Iterator[EngineCache]:  # noqa: ANN001 - closed before the databases are dropped
    kept = EngineCache()
    yield kept
    kept.close()


def _pid(conn: sa.Connection) -> int:
    return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def _table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL)")


def _load(engine: sa.Engine, rows: list[tuple], *, cancel: bool = False) -> int:
    """One load session (upsert); returns the backend pid it wrote through."""
    session = LoadSession(engine, table="people", columns=COLUMNS, mode=Mode.upsert)
    session.begin()
    try:
        pid = session._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()  # noqa: SLF001
        session.write(rows)
        if cancel:
            session.cancel()
            return pid
        session.finish(extracted=len(rows))
        session.commit()
        return pid
    finally:
        session.close()


def test_one_engine_per_exact_url_and_use(cache: EngineCache, pg_url: str, tmp_path) -> None:  # noqa: ANN001
    url = make_url(pg_url)
    first = cache.engine(url, sqlite_mode="rw")
    assert cache.engine(url, sqlite_mode="rw") is first and is_cached(first)
    assert cache.engine(url, sqlite_mode="ro") is not first  # the extractor's engine is never the loader's
    other_secret = cache.engine(url.set(password="changed"), sqlite_mode="rw")
    other_server = cache.engine(url.set(host="localhost"), sqlite_mode="rw")
    assert len({id(first), id(other_secret), id(other_server)}) == 3
    # each engine connects exactly where its URL (with its secret) was saved for
    for wanted, engine in ((url, first), (url.set(password="changed"), other_secret),
                           (url.set(host="localhost"), other_server)):
        assert engine.url.render_as_string(hide_password=False) == wanted.render_as_string(hide_password=False)
    (tmp_path / "x.db").touch()
    sqlite = cache.engine(make_url(f"sqlite:///{tmp_path / 'x.db'}"), sqlite_mode="rw")
    assert not is_cached(sqlite) and isinstance(sqlite.pool, sa.pool.NullPool)
    cache.release(sqlite)


def test_idle_engines_are_disposed(pg_url: str) -> None:
    cache = EngineCache(idle_s=0.0)
    try:
        url = make_url(pg_url)
        first = cache.engine(url, sqlite_mode="rw")
        cache.engine(url.set(password="other"), sqlite_mode="rw")
        assert len(cache) == 1 and not any(e is first for e, _ in cache._engines.values())  # noqa: SLF001
    finally:
        cache.close()


def test_session_state_does_not_leak_to_the_next_user(cache: EngineCache, pg_url: str) -> None:
    admin = sa.create_engine(pg_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # a default DateStyle psycopg2 cannot parse: it sets ISO on connect, so must we
        conn.exec_driver_sql(f"ALTER ROLE postgres IN DATABASE {admin.url.database} SET DateStyle = 'SQL, DMY'")
    engine = cache.engine(make_url(pg_url), sqlite_mode="rw")
    with engine.connect() as conn:
        pid = _pid(conn)
        role = f"dm_cache_role_{pid}"
        conn.exec_driver_sql(f"CREATE ROLE {role}")
        conn.commit()
        conn.exec_driver_sql(f"SET ROLE {role}")
        conn.exec_driver_sql("SET statement_timeout = 1234")
        conn.exec_driver_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        conn.exec_driver_sql("CREATE TEMPORARY TABLE leaked (x int)")
        conn.exec_driver_sql("SELECT pg_advisory_lock(727)")
        conn.commit()
    try:
        with engine.connect() as conn:
            assert _pid(conn) == pid  # the same server session, reused…
            row = conn.exec_driver_sql(
                "SELECT current_user, current_setting('statement_timeout'), "
                "current_setting('default_transaction_read_only'), to_regclass('pg_temp.leaked'), "
                "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())").one()
            assert tuple(row) == ("postgres", "0", "off", None, 0)  # …as a fresh one
            assert conn.exec_driver_sql("SELECT current_setting('DateStyle')").scalar_one().startswith("ISO")
            assert str(conn.exec_driver_sql("SELECT date '2024-02-01'").scalar_one()) == "2024-02-01"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP ROLE {role}")


def test_load_connection_reused_when_clean_never_after_a_cancel(cache: EngineCache, pg_url: str) -> None:
    engine = cache.engine(make_url(pg_url), sqlite_mode="rw")
    _table(engine)
    first = _load(engine, [(1, "a")])
    assert _load(engine, [(2, "b")]) == first  # a committed and closed session returns its connection
    cancelled = _load(engine, [(3, "c")], cancel=True)
    assert cancelled == first
    with engine.connect() as conn:
        assert _pid(conn) != cancelled  # a connection a cancel may still reach is closed, not reused
        assert conn.exec_driver_sql("SELECT id, name FROM people ORDER BY id").all() == [(1, "a"), (2, "b")]
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_class WHERE relpersistence = 't'").scalar_one() == 0


def test_a_changed_destination_is_seen_by_the_next_execution(cache: EngineCache, pg_url: str) -> None:
    engine = cache.engine(make_url(pg_url), sqlite_mode="rw")
    _table(engine)
    _load(engine, [(1, "a")])
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE people DROP COLUMN name")
    with pytest.raises(ValidationFailed, match="name"):
        _load(engine, [(2, "b")])
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE people ADD COLUMN name text")
    _load(engine, [(2, "b")])
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT id, name FROM people ORDER BY id").all() == [(1, None), (2, "b")]


def test_source_sessions_are_never_reused(cache: EngineCache, pg_url: str) -> None:
    engine = cache.engine(make_url(pg_url), sqlite_mode="ro")
    step = StepSpec(name="me", project_id=1, sql="SELECT pg_backend_pid() AS pid")
    extraction = Extraction([step], {1: engine}, batch_rows=10)
    extraction.open()
    (source_pid,), = [row for batch in extraction.batches() for row in batch]
    extraction.close()
    with engine.connect() as conn:
        assert _pid(conn) != source_pid  # read-only, SET ROLE and the driver's casters go with it
        assert conn.exec_driver_sql("SELECT current_setting('default_transaction_read_only')").scalar_one() == "off"
