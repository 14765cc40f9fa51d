"""The MariaDB bulk export read from the socket buffer (shared.dialects.mysql_rows) gives what the cursor gives.

Given a MariaDB source with awkward values (NULL everywhere, tabs, newlines, backslashes,
emoji, text that starts with ``\\Z``, empty strings, lines of 250, 251 and 70,000 bytes, long
rows the server frames, thousands of rows so that sequence ids wrap and reads split packets
anywhere, rows over 16 MB), when the export is read once through the packet reader and once
through PyMySQL's ``SSCursor``, then the chunks are byte for byte the same, the session is
usable afterwards, a server error mid-stream and ``KILL QUERY`` surface as the same error with
the same classification, and a stopped read leaves no statement running on the server.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

import shared.dialects.mysql_rows as mysql_rows
from shared.connections import create_db_engine
from shared.dialects import get_dialect
from shared.dialects.mysql_bulk import mysql_export_chunks
from tests.integration.mariadb_source import execute, move, rows_of

pytestmark = pytest.mark.integration

DIALECT = get_dialect("mysql")
AWKWARD = [
    "CREATE TABLE src (id BIGINT PRIMARY KEY, i INT, n DECIMAL(38,10), f DOUBLE, t LONGTEXT, v VARCHAR(40), "
    "bl LONGBLOB, d DATE, ts DATETIME(6), fl FLOAT) CHARACTER SET utf8mb4",
    "INSERT INTO src VALUES (1, 2147483647, 1234567890123456789012345678.0123456789, 0.1, "
    "'tab\\there nl\\nthere cr\\rthere bs\\\\\\\\ \"dq\" ''sq'' , comma', 'NULL', X'00FF00', '1970-01-01', "
    "'2024-02-29 12:34:56.789012', 0.1)",
    "INSERT INTO src VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "INSERT INTO src VALUES (3, 0, 0, 1/3e0, 'emoji 😀 and 𝄞 — ünïcödé ✓', '', X'', '2000-02-29', "
    "'2000-01-01 00:00:00.000001', 1/3)",
    "INSERT INTO src VALUES (4, 1, 1, 1, '\\\\Z not a frame', '\\\\N', X'5C5A', NULL, NULL, NULL)",
    # lines of 70,000 bytes (a 3-byte length prefix), framed long rows, and below: lines of 60 to 360
    # bytes (1- and 2-byte length prefixes)
    "INSERT INTO src VALUES (200, 1, 1, 1, REPEAT('y', 70000), 'v', NULL, NULL, NULL, NULL)",
    "INSERT INTO src VALUES (201, 1, 1, 1, REPEAT('a\\tb\\\\c\\nd', 1000), 'v', REPEAT(X'5C0A00', 2000), "
    "'2001-01-01', NULL, 2.5)",
    "INSERT INTO src SELECT seq, seq, seq / 7, seq / 3e0, CONCAT('row ', seq, '\\t', REPEAT('z', seq % 300)), "
    "IF(seq % 5 = 0, NULL, 'v'), IF(seq % 3 = 0, X'00', NULL), '2020-01-01', NULL, seq / 9 FROM seq_1000_to_21000",
]


@contextmanager
def session(url: str) -> Iterator[Any]:
    """A source session as the extractor opens it (read-only transaction, session settings)."""
    engine = create_db_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            DIALECT.prepare_source_session(raw)
            DIALECT.begin_read_only(raw, timeout_s=None)
            yield raw
    finally:
        engine.dispose()


def export_sql(raw: Any, sql: str) -> str:
    cursor = DIALECT.open_stream(raw, DIALECT.probe_sql(sql))
    cursor.fetchall()
    columns = DIALECT.describe_cursor(cursor, [])
    cursor.close()
    export = DIALECT.bulk_export_sql(sql, columns, "pg_text")
    assert export is not None
    return export


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The packet readers the exports made (none: the export read through the cursor)."""
    made: list[object] = []
    real = mysql_rows.packet_rows

    def spy(cursor: Any) -> Any:
        reader = real(cursor)
        made.append(reader)
        return reader

    monkeypatch.setattr(mysql_rows, "packet_rows", spy)
    return made


def read(url: str, sql: str, *, packet_reader: bool, chunk_bytes: int, max_rows: int,
         export: bool = True) -> tuple[list[tuple[bytes, int]], BaseException | None]:
    """(chunks read, the error raised or None); the session answers a query afterwards."""
    chunks: list[tuple[bytes, int]] = []
    with session(url) as raw:
        statement = export_sql(raw, sql) if export else sql
        try:
            for chunk in mysql_export_chunks(raw, statement, chunk_bytes, max_rows, packet_reader=packet_reader):
                chunks.append(chunk)
        except Exception as exc:  # noqa: BLE001 - compared by the tests
            return chunks, exc
        cursor = raw.cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchall() == ((1,),)
        cursor.close()
    return chunks, None


@pytest.mark.parametrize(("chunk_bytes", "max_rows"), [(300, 2), (1 << 16, 7), (4 << 20, 50_000)])
def test_the_packet_reader_gives_the_cursors_chunks_byte_for_byte(
        chunk_bytes: int, max_rows: int, mysql_database: Callable[[], str], used: list[object]) -> None:
    url = mysql_database()
    execute(url, AWKWARD)
    sql = "SELECT * FROM src"
    cursor_chunks, error = read(url, sql, packet_reader=False, chunk_bytes=chunk_bytes, max_rows=max_rows)
    assert error is None and used == []
    fast_chunks, error = read(url, sql, packet_reader=True, chunk_bytes=chunk_bytes, max_rows=max_rows)
    assert error is None and len(used) == 1 and used[0] is not None
    assert sum(n for _, n in fast_chunks) == rows_of(url, "SELECT COUNT(*) FROM src")[0][0] == 20_007
    assert len(fast_chunks) == len(cursor_chunks)
    assert fast_chunks == cursor_chunks


def test_rows_over_16_mb_arrive_whole(mysql_database: Callable[[], str]) -> None:
    """Lines of 16,777,214 and 16,777,211 bytes (+ 4 length bytes: two packets, and a full one
    followed by an empty one), within the server's default max_allowed_packet of 16 MB."""
    url = mysql_database()
    lines = ("SELECT CONCAT('\\\\ZE16777202:', REPEAT('a', 16777202)) UNION ALL SELECT 'x' UNION ALL "
             "SELECT CONCAT('\\\\ZE16777199:', REPEAT('b', 16777199)) UNION ALL SELECT ''")
    fast, error = read(url, lines, packet_reader=True, chunk_bytes=1 << 20, max_rows=1000, export=False)
    assert error is None
    assert fast == [(b"a" * 16777202 + b"\n" + b"x\n" + b"b" * 16777199 + b"\n\n", 4)]
    assert fast == read(url, lines, packet_reader=False, chunk_bytes=1 << 20, max_rows=1000, export=False)[0]


def test_a_server_error_mid_stream_is_the_cursors_error(mysql_database: Callable[[], str]) -> None:
    url = mysql_database()
    sql = "SELECT seq AS id, IF(seq = 30000, (SELECT 1 UNION SELECT 2), 'x') AS v FROM seq_1_to_40000"
    outcomes = [read(url, sql, packet_reader=reader, chunk_bytes=1 << 16, max_rows=1000) for reader in (True, False)]
    (fast, fast_error), (cursor, cursor_error) = outcomes
    assert fast == cursor and sum(n for _, n in fast) == 29_000  # the rows before the error came through
    assert type(fast_error) is type(cursor_error) and fast_error.args == cursor_error.args
    assert fast_error.args == (1242, "Subquery returns more than 1 row")
    assert DIALECT.classify_error(fast_error) == DIALECT.classify_error(cursor_error) == "source"


@pytest.mark.parametrize("packet_reader", [True, False], ids=["packets", "cursor"])
def test_kill_query_mid_stream_is_cancelled_and_leaves_no_query_running(
        packet_reader: bool, mysql_database: Callable[[], str]) -> None:
    url = mysql_database()
    # the first rows stream at once, then the server computes for minutes
    sql = "SELECT seq AS id, IF(seq = 30000, BENCHMARK(50000000, MD5('x')), 0) AS busy FROM seq_1_to_30001"
    engine = create_db_engine(url, poolclass=sa.pool.NullPool)
    with session(url) as raw:
        thread_id = raw.thread_id()
        chunks = mysql_export_chunks(raw, export_sql(raw, sql), 1 << 16, 1000, packet_reader=packet_reader)
        assert next(chunks)[1] == 1000
        with engine.connect() as other:
            other.exec_driver_sql(f"KILL QUERY {thread_id}")
        with pytest.raises(Exception) as raised:  # noqa: PT011 - compared below
            for _ in chunks:
                pass
        assert raised.value.args[0] == 1317 and DIALECT.classify_error(raised.value) == "cancelled"
        running = []
        for _ in range(100):  # the statement ends soon after KILL QUERY; not a timing assertion
            running = rows_of(url, f"SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = {thread_id} "
                                   "AND COMMAND = 'Query'")
            if not running:
                break
            time.sleep(0.1)
        assert running == []
    engine.dispose()


def test_closing_the_export_early_leaves_no_query_running(mysql_database: Callable[[], str],
                                                          used: list[object]) -> None:
    """The extractor's stop: KILL QUERY from another session, then the export closed on its thread."""
    url = mysql_database()
    sql = "SELECT seq AS id, IF(seq = 30000, BENCHMARK(50000000, MD5('x')), 0) AS busy FROM seq_1_to_30001"
    engine = create_db_engine(url, poolclass=sa.pool.NullPool)
    with session(url) as raw:
        thread_id = raw.thread_id()
        chunks = DIALECT.bulk_export(raw, export_sql(raw, sql), chunk_bytes=1 << 16, max_rows=1000)
        assert next(iter(chunks))[1] == 1000 and used and used[0] is not None
        DIALECT.cancel_statement(raw, None, engine)
        chunks.close()  # waits for the helper thread
        for _ in range(100):  # not a timing assertion
            if not rows_of(url, f"SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = {thread_id} "
                                "AND COMMAND = 'Query'"):
                break
            time.sleep(0.1)
        assert not rows_of(url, f"SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = {thread_id} "
                                "AND COMMAND = 'Query'")
    engine.dispose()


def test_text_in_other_character_sets_is_escaped_as_the_general_path_reads_it(
        mysql_database: Callable[[], str], pg_database: Callable[[], str], used: list[object]) -> None:
    """The export escapes a value's UTF-8 bytes (REPLACE on bytes): latin1, utf16 and utf8mb4
    columns with the escaped characters next to multi-byte ones."""
    src, dst = mysql_database(), pg_database()
    execute(src, ["CREATE TABLE src (id INT PRIMARY KEY, l VARCHAR(40) CHARACTER SET latin1, "
                  "u VARCHAR(40) CHARACTER SET utf16, m TEXT CHARACTER SET utf8mb4)",
                  "INSERT INTO src VALUES (1, 'é\\tà\\\\ü\\nß\\r', 'Ω\\t😀\\\\\\n\\r', '\\\\\\\\N\\t𝄞\\n'), "
                  "(2, '', '', ''), (3, NULL, NULL, NULL), (4, '\\\\N', 'Z\\\\Z', '\\\\Z')"])
    execute(dst, ["CREATE TABLE fast (id int PRIMARY KEY, l text, u text, m text)",
                  "CREATE TABLE general (id int PRIMARY KEY, l text, u text, m text)"])
    for table, bulk in (("fast", True), ("general", False)):
        _, failed, _ = move(src, "SELECT * FROM src", dst, table, bulk=bulk)
        assert not failed and len(used) == 1 and used[0] is not None  # the fast table came through the export
    fast = rows_of(dst, "SELECT * FROM fast ORDER BY id")
    assert fast == rows_of(dst, "SELECT * FROM general ORDER BY id")
    assert fast[0] == (1, "é\tà\\ü\nß\r", "Ω\t😀\\\n\r", "\\\\N\t𝄞\n")


@pytest.mark.parametrize("packet_reader", [True, False], ids=["packets", "cursor"])
def test_a_slow_export_is_cut_by_age_so_progress_keeps_coming(
        packet_reader: bool, mysql_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows that trickle in (~1 ms each, far below the size and row limits) still leave in several
    chunks: one is cut at the first fetch after it is BULK_MAX_AGE_S old (here 0.2 s, fetches of 50)."""
    import shared.dialects.mysql_bulk as mysql_bulk

    monkeypatch.setattr(mysql_bulk, "BULK_MAX_AGE_S", 0.2)
    monkeypatch.setattr(mysql_bulk, "FETCH_ROWS", 50)
    url = mysql_database()
    # rows of 1 KB (the server sends whenever its 16 KB buffer fills) that cost ~1 ms each to find
    sql = "SELECT seq AS id, REPEAT('x', 1000) AS pad FROM seq_1_to_1000 WHERE BENCHMARK(3000, MD5(seq)) = 0"
    with session(url) as raw:
        chunks = list(mysql_export_chunks(raw, export_sql(raw, sql), 1 << 20, 100_000, packet_reader=packet_reader))
    counts = [n for _, n in chunks]
    assert sum(counts) == 1000 and len(counts) >= 2  # ~2 s of rows here: about nine chunks, never one
    assert all(n % 50 == 0 for n in counts)  # cut at fetch boundaries
    assert [int(line.split(b"\t")[0]) for payload, _ in chunks for line in payload.splitlines()] == list(range(1, 1001))
