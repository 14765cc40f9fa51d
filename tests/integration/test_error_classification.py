"""Transient or permanent, by SQLSTATE / error number: real errors from PostgreSQL, MariaDB and
SQLite, each classified by its dialect and by the engine-neutral ``classify_error`` — connection
refused, authentication failed, unknown database, deadlock, serialization failure, lock and
statement timeouts, syntax, undefined table and column, permission denied, and the resource
class disk full belongs to (provoked as a temp file / table limit; disk full itself by code).

The local PostgreSQL trusts every local connection, so it never asks for a password: the
wrong-password case talks to a stand-in that answers the start-up exactly as a PostgreSQL
server with password authentication does (an ErrorResponse with SQLSTATE 28P01), and
psycopg2/libpq turn that into the same error a real server gives.
"""
from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.dialects import get_dialect
from shared.dialects.classify import PERMANENT, TRANSIENT, classify_error
from tests.integration.pg_refusal import pg_refusing_password
from tests.conftest import MYSQL_URL, unique_name
from tests.fixtures.databases import Databases


@pytest.fixture(scope="module")
def pg_once(module_databases: Databases) -> str:
    """One PostgreSQL database for every case of this module (each case uses its own tables)."""
    return module_databases.pg()


@pytest.fixture(scope="module")
def mysql_once(module_databases: Databases) -> str:
    return module_databases.mysql(collation=None)


def _error_of(url: str, *statements: str, **engine_args: object) -> BaseException:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, **engine_args)
    try:
        with engine.connect() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    except sa.exc.DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"no error from {statements}")


def _assert_class(exc: BaseException, engine: str, expected: str) -> None:
    assert get_dialect(engine).classify(exc) == expected, repr(getattr(exc, "orig", exc))
    assert classify_error(exc) == expected


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def _pg_with(url: str, **parts: object) -> str:
    return make_url(url).set(**parts).render_as_string(hide_password=False)


def _pg_serialization_failure(url: str, *, begin: tuple[str, ...] = ("BEGIN ISOLATION LEVEL REPEATABLE READ",),
                              table: str = "acct") -> BaseException:
    """A repeatable-read transaction updating a row another session changed since it read it."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id int PRIMARY KEY, n int)")
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES (1, 0)")
    acct = table
    try:
        with engine.connect() as a, engine.connect() as b:
            for sql in begin:
                a.exec_driver_sql(sql)
            a.exec_driver_sql(f"SELECT n FROM {acct} WHERE id = 1")
            b.exec_driver_sql(f"UPDATE {acct} SET n = 1 WHERE id = 1")
            b.commit()
            with pytest.raises(sa.exc.DBAPIError) as caught:
                a.exec_driver_sql(f"UPDATE {acct} SET n = 2 WHERE id = 1")
            return caught.value
    finally:
        engine.dispose()


def _lock_timeout(url: str, *, setting: str) -> BaseException:
    """An update that waits for a row another session holds, with a short lock timeout."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE held (id int PRIMARY KEY, n int)")
        conn.exec_driver_sql("INSERT INTO held VALUES (1, 0)")
    try:
        with engine.connect() as a, engine.connect() as b:
            a.exec_driver_sql("UPDATE held SET n = 1 WHERE id = 1")  # holds the row, uncommitted
            b.exec_driver_sql(setting)
            with pytest.raises(sa.exc.DBAPIError) as caught:
                b.exec_driver_sql("UPDATE held SET n = 2 WHERE id = 1")
            a.rollback()
            return caught.value
    finally:
        engine.dispose()


def _deadlock(url: str) -> BaseException:
    """Two sessions each holding one row and waiting for the other's: one of them is the victim."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE pair (id int PRIMARY KEY, n int)")
        conn.exec_driver_sql("INSERT INTO pair VALUES (1, 0), (2, 0)")
    errors: list[BaseException] = []
    first_locked = threading.Barrier(2)

    def worker(mine: int, other: int) -> None:
        with engine.connect() as conn:
            try:
                conn.exec_driver_sql(f"UPDATE pair SET n = 1 WHERE id = {mine}")
                first_locked.wait()
                conn.exec_driver_sql(f"UPDATE pair SET n = 1 WHERE id = {other}")
            except sa.exc.DBAPIError as exc:
                errors.append(exc)
            conn.rollback()

    threads = [threading.Thread(target=worker, args=(1, 2)), threading.Thread(target=worker, args=(2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    engine.dispose()
    assert len(errors) == 1, errors
    return errors[0]


def _pg_permission_denied(url: str) -> BaseException:
    """A role without privileges reading a table (SET ROLE: the local server trusts every login)."""
    role = unique_name("noright")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" NOLOGIN')
        conn.exec_driver_sql("CREATE TABLE guarded (id int)")
    try:
        return _error_of(url, f'SET ROLE "{role}"', "SELECT * FROM guarded")
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        engine.dispose()


# class 53 (insufficient resources, where disk full 53100 belongs): a sort spilling to disk beyond
# temp_file_limit is refused with 53400, the same class; disk full itself cannot be provoked here
_PG_TEMP_FILE_LIMIT = ("SET work_mem = '64kB'", "SET temp_file_limit = '64kB'",
                       "SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC) s")

PG_CASES: list[tuple[str, Callable[[str], BaseException], str, str]] = [
    ("undefined column", lambda url: _error_of(url, "SELECT no_such_column FROM (SELECT 1 AS a) t"), "42703",
     PERMANENT),
    ("permission denied", _pg_permission_denied, "42501", PERMANENT),
    ("temp file limit (resources, as disk full)", lambda url: _error_of(url, *_PG_TEMP_FILE_LIMIT), "53400",
     TRANSIENT),
    ("wrong password", lambda url: _with_refusing_pg(url), "28P01", PERMANENT),
    ("unknown role", lambda url: _error_of(_pg_with(url, username=unique_name("nobody"))), "28000", PERMANENT),
    ("unknown database", lambda url: _error_of(_pg_with(url, database=unique_name("nodb"))), "3D000", PERMANENT),
    ("refused port", lambda url: _error_of(_pg_with(url, port=_refused_port())), "", TRANSIENT),
    ("syntax error", lambda url: _error_of(url, "SELEC 1"), "42601", PERMANENT),
    ("missing table", lambda url: _error_of(url, "SELECT * FROM no_such_table"), "42P01", PERMANENT),
    ("statement timeout", lambda url: _error_of(url, "SET statement_timeout = 50", "SELECT pg_sleep(2)"),
     "57014", TRANSIENT),
    ("serialization failure", _pg_serialization_failure, "40001", TRANSIENT),
    ("lock timeout", lambda url: _lock_timeout(url, setting="SET lock_timeout = 100"), "55P03", TRANSIENT),
    ("deadlock", _deadlock, "40P01", TRANSIENT),
]


def _with_refusing_pg(url: str) -> BaseException:
    with pg_refusing_password("app") as port:
        return _error_of(_pg_with(url, host="127.0.0.1", port=port, username="app", password="wrong"))


@pytest.mark.parametrize("case, make, sqlstate, expected", PG_CASES, ids=[c[0] for c in PG_CASES])
def test_postgresql_errors_are_classified_by_sqlstate(pg_once: str, case: str, make: Callable[[str], BaseException],
                                                      sqlstate: str, expected: str) -> None:
    from shared.dialects.classify import postgresql_sqlstate

    exc = make(pg_once)
    assert (postgresql_sqlstate(exc.orig) or "") == sqlstate, str(exc.orig)
    _assert_class(exc, "postgresql", expected)


@pytest.fixture
def mysql_user() -> Iterator[tuple[str, str]]:
    """A MariaDB user with a password and no grants (dropped afterwards)."""
    name, password = unique_name("u"), "right-password"
    admin = sa.create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE USER '{name}'@'%%' IDENTIFIED BY '{password}'")
        conn.exec_driver_sql(f"CREATE USER '{name}'@'localhost' IDENTIFIED BY '{password}'")
    yield name, password
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'%%'")
        conn.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'localhost'")
    admin.dispose()


def _mysql_table_full(url: str) -> BaseException:
    """A MEMORY table past max_heap_table_size: 1114 "The table is full" (what a full disk gives InnoDB)."""
    return _error_of(url, "SET SESSION max_heap_table_size = 16384",
                     "CREATE TABLE heap (a CHAR(255)) ENGINE=MEMORY",
                     "INSERT INTO heap SELECT REPEAT('x', 255) FROM seq_1_to_10000")


def _mysql_permission_denied(url: str, user: tuple[str, str]) -> BaseException:
    """A user allowed to read one table reading another (1142; a database not granted at all is 1044)."""
    database = make_url(url).database
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE open_t (id int)")
        conn.exec_driver_sql("CREATE TABLE closed_t (id int)")
        for host in ("%%", "localhost"):
            conn.exec_driver_sql(f"GRANT SELECT ON `{database}`.open_t TO '{user[0]}'@'{host}'")
    engine.dispose()
    return _error_of(_pg_with(url, username=user[0], password=user[1]), "SELECT * FROM closed_t")


MYSQL_CASES: list[tuple[str, Callable[[str, tuple[str, str]], BaseException], int, str]] = [
    ("undefined column", lambda url, u: _error_of(url, "SELECT no_such_column FROM (SELECT 1 AS a) t"), 1054,
     PERMANENT),
    ("permission denied", _mysql_permission_denied, 1142, PERMANENT),
    ("serialization failure (snapshot isolation)", lambda url, u: _pg_serialization_failure(
        url, begin=("SET SESSION innodb_snapshot_isolation = ON",
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", "START TRANSACTION"), table="acct_si"),
     1020, TRANSIENT),
    ("table full (disk full class)", lambda url, u: _mysql_table_full(url), 1114, TRANSIENT),
    ("wrong password", lambda url, u: _error_of(_pg_with(url, username=u[0], password="wrong")), 1045, PERMANENT),
    ("database not granted", lambda url, u: _error_of(_pg_with(url, username=u[0], password=u[1])), 1044, PERMANENT),
    ("unknown database", lambda url, u: _error_of(_pg_with(url, database=unique_name("nodb"))), 1049, PERMANENT),
    ("refused port", lambda url, u: _error_of(_pg_with(url, port=_refused_port())), 2003, TRANSIENT),
    ("syntax error", lambda url, u: _error_of(url, "SELEC 1"), 1064, PERMANENT),
    ("missing table", lambda url, u: _error_of(url, "SELECT * FROM no_such_table"), 1146, PERMANENT),
    ("lock wait timeout", lambda url, u: _lock_timeout(url, setting="SET innodb_lock_wait_timeout = 1"), 1205,
     TRANSIENT),
    ("deadlock", lambda url, u: _deadlock(url), 1213, TRANSIENT),
]


@pytest.mark.parametrize("case, make, code, expected", MYSQL_CASES, ids=[c[0] for c in MYSQL_CASES])
def test_mariadb_errors_are_classified_by_error_number(mysql_once: str, mysql_user: tuple[str, str], case: str,
                                                      make: Callable, code: int, expected: str) -> None:
    exc = make(mysql_once, mysql_user)
    assert exc.orig.args[0] == code, str(exc.orig)
    _assert_class(exc, "mysql", expected)


def test_sqlite_errors_are_classified_by_result_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    _assert_class(_error_of(url, "SELECT * FROM no_such_table"), "sqlite", PERMANENT)
    missing = _error_of("sqlite:///file:" + str(tmp_path / "missing.db") + "?mode=ro&uri=true")
    assert missing.orig.sqlite_errorname == "SQLITE_CANTOPEN"
    _assert_class(missing, "sqlite", PERMANENT)
    holder = sqlite3.connect(tmp_path / "a.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        busy = _error_of(url, "CREATE TABLE t (x int)", connect_args={"timeout": 0})
        assert busy.orig.sqlite_errorname == "SQLITE_BUSY"
        _assert_class(busy, "sqlite", TRANSIENT)
    finally:
        holder.rollback()
        holder.close()


def test_sqlite_source_errors_are_told_apart_by_result_code(tmp_path: Path) -> None:
    """A write under ``query_only`` is a read-only error, an interrupted statement a timeout."""
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("CREATE TABLE t (x int)")
    conn.execute("PRAGMA query_only = ON")
    with pytest.raises(sqlite3.Error) as written:
        conn.execute("INSERT INTO t VALUES (1)")
    conn.set_progress_handler(lambda: 1, 1)
    with pytest.raises(sqlite3.Error) as interrupted:
        conn.execute("SELECT count(*) FROM t, t AS u")
    conn.close()
    dialect = get_dialect("sqlite")
    assert written.value.sqlite_errorname == "SQLITE_READONLY"
    assert dialect.classify_error(written.value) == "read_only" and dialect.classify(written.value) == PERMANENT
    assert interrupted.value.sqlite_errorname == "SQLITE_INTERRUPT"
    assert dialect.classify_error(interrupted.value) == "timeout" and dialect.classify(interrupted.value) == TRANSIENT


@pytest.mark.parametrize("exc, expected", [
    (ValueError("a bug of ours"), TRANSIENT),  # the one rule for unknown errors: retried, bounded by max_retries
    (ConnectionResetError(104, "reset"), TRANSIENT),
])
def test_errors_without_a_code_follow_the_one_rule_for_unknown_errors(exc: BaseException, expected: str) -> None:
    assert classify_error(exc) == expected


class _PgError(Exception):
    """Shaped like psycopg2's errors (a ``pgcode``), for SQLSTATEs that cannot be provoked here."""

    def __init__(self, pgcode: str) -> None:
        super().__init__(f"SQLSTATE {pgcode}")
        self.pgcode = pgcode


@pytest.mark.parametrize("sqlstate, expected", [
    ("53100", TRANSIENT),  # disk full
    ("53200", TRANSIENT),  # out of memory
    ("53300", TRANSIENT),  # too many connections
    ("28P01", PERMANENT),  # invalid password
    ("42501", PERMANENT),  # insufficient privilege
])
def test_postgresql_sqlstates_that_cannot_be_provoked_here(sqlstate: str, expected: str) -> None:
    assert get_dialect("postgresql").classify(_PgError(sqlstate)) == expected


@pytest.mark.parametrize("code, expected", [(1021, TRANSIENT), (1041, TRANSIENT), (1045, PERMANENT)])
def test_mariadb_error_numbers_that_cannot_be_provoked_here(code: int, expected: str) -> None:
    import pymysql

    exc = pymysql.err.OperationalError(code, "disk full / out of memory / access denied")
    assert get_dialect("mysql").classify(exc) == expected
    assert classify_error(exc) == expected


class _OdbcError(Exception):
    """Shaped like pyodbc's errors: (SQLSTATE, message with the native number)."""


@pytest.mark.parametrize("state, message, expected", [
    ("28000", "[28000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Login failed for user 'app'. (18456)",
     PERMANENT),
    ("42000", "[42000] Cannot open database \"nodb\" requested by the login. (4060)", PERMANENT),
    ("08001", "[08001] TCP Provider: Error code 0x2749 (10057)", TRANSIENT),
    ("40001", "[40001] Transaction (Process ID 51) was deadlocked (1205)", TRANSIENT),
    ("42S02", "[42S02] Invalid object name 'nope'. (208)", PERMANENT),
])
def test_sql_server_errors_are_classified_by_sqlstate(state: str, message: str, expected: str) -> None:
    assert get_dialect("mssql").classify(_OdbcError(state, message)) == expected
