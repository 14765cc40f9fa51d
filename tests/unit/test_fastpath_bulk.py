"""The fast path's pure parts: bulk-text parsing, the same-text table, export SQL, chunking, messages."""
from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from shared import messages
from shared.dialects.bulk import BULK_CHUNK_BYTES, MYSQL_CSV, PG_TEXT, parse, same_text
from shared.dialects.mysql_bulk import mysql_export_sql
from shared.dialects.postgresql_load import pg_export_sql
from shared.dialects.bulkstream import copy_out_chunks
from shared.settings import DEFAULT_BATCH_ROWS, DEFAULT_BULK_BATCH_ROWS
from shared.types import Column

COLUMNS = [Column("id", "bigint"), Column("n", "decimal"), Column("f", "float"), Column("b", "bool"),
           Column("t", "text"), Column("by", "bytes"), Column("d", "date"), Column("tm", "time"),
           Column("ts", "timestamp"), Column("tz", "timestamptz"), Column("u", "uuid")]


def test_pg_text_parses_back_into_the_values_the_general_path_carries() -> None:
    line = ("7\t12.50\t0.1\tt\ttab\\there\\nnl\\\\bs\\r\\b\\f\\v\t\\\\x00ff\t2024-02-29\t23:59:59.5\t"
            "2024-01-01 00:00:00\t2024-01-01 05:30:00+05:30\t12345678-1234-5678-1234-567812345678\n")
    nulls = "\t".join(["\\N"] * len(COLUMNS)) + "\n"
    rows = parse((line + nulls).encode(), PG_TEXT, COLUMNS)
    assert rows[0] == (7, Decimal("12.50"), 0.1, True, "tab\there\nnl\\bs\r\b\f\v", b"\x00\xff", date(2024, 2, 29),
                       time(23, 59, 59, 500000), datetime(2024, 1, 1),
                       datetime(2024, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
                       uuid.UUID("12345678-1234-5678-1234-567812345678"))
    assert rows[1] == (None,) * len(COLUMNS)


def test_mysql_csv_tells_null_from_the_quoted_word_null_and_keeps_newlines_and_quotes() -> None:
    cols = [Column("id", "int"), Column("t", "text"), Column("by", "bytes")]
    payload = b'"1","say ""hi""\nnext line, comma","00ff"\nNULL,"NULL",NULL\n"3","",""\n'
    assert parse(payload, MYSQL_CSV, cols) == [(1, 'say "hi"\nnext line, comma', b"\x00\xff"),
                                               (None, "NULL", None), (3, "", b"")]


def test_a_value_that_does_not_parse_stays_text_for_the_destination_to_judge() -> None:
    assert parse(b"infinity\n", PG_TEXT, [Column("ts", "timestamp")]) == [("infinity",)]


def test_a_malformed_payload_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse(b'"1","unterminated\n', MYSQL_CSV, [Column("a", "int"), Column("b", "text")])
    with pytest.raises(ValueError):
        parse(b"1\t2\n", PG_TEXT, [Column("a", "int")])


@pytest.mark.parametrize("fmt,source,kind,same", [
    (PG_TEXT, "bigint", "int", True), (PG_TEXT, "timestamp", "timestamptz", True),
    (PG_TEXT, "timestamptz", "timestamp", False),  # the general path converts to UTC; COPY would drop the offset
    (PG_TEXT, "interval", "interval", False), (PG_TEXT, "bytes", "text", False), (PG_TEXT, "bool", "int", False),
    (MYSQL_CSV, "bool", "int", True), (MYSQL_CSV, "timestamptz", "timestamp", True),
    (MYSQL_CSV, "uuid", "text", False), (MYSQL_CSV, "timestamptz", "text", False),
])
def test_the_fast_path_is_taken_only_where_the_text_means_the_same_value(fmt: str, source: str, kind: str,
                                                                          same: bool) -> None:
    assert same_text(fmt, [Column("c", source)], [kind]) is same


def test_postgresql_exports_copy_text_or_quoted_csv_for_mariadb() -> None:
    assert pg_export_sql("SELECT 1 AS a", [Column("a", "int")], PG_TEXT) == "COPY (\nSELECT 1 AS a\n) TO STDOUT"
    sql = pg_export_sql("SELECT * FROM t", [Column("b", "bool"), Column("z", "timestamptz"), Column("x", "bytes")],
                        MYSQL_CSV)
    assert sql is not None
    assert "(dm_q.b)::int" in sql and "(dm_q.z AT TIME ZONE 'UTC')" in sql and "encode(dm_q.x, 'hex')" in sql
    assert "FORCE_QUOTE *" in sql and "NULL 'NULL'" in sql
    assert pg_export_sql("SELECT i", [Column("i", "interval")], MYSQL_CSV) is None


def test_mariadb_builds_copy_text_lines_server_side_but_not_for_ordered_queries() -> None:
    sql = mysql_export_sql("SELECT a, b FROM t", [Column("a", "int"), Column("b", "text")], PG_TEXT)
    assert sql is not None and "CONCAT_WS(CHAR(9 USING utf8mb4), " in sql
    assert "IF(IFNULL(LENGTH(dm_q.`b`), 0) > 4096" in sql  # long rows come framed, escaped client-side
    assert "IFNULL(" in sql and "REPLACE(" in sql and "FROM (\nSELECT a, b FROM t\n) dm_q" in sql
    assert mysql_export_sql("SELECT a FROM t ORDER BY a", [Column("a", "int")], PG_TEXT) is None
    assert mysql_export_sql("SELECT a FROM t", [Column("a", "int")], MYSQL_CSV) is None
    assert mysql_export_sql("SELECT a FROM t", [Column("a", "int")], PG_TEXT).startswith("SELECT CONCAT_WS(")
    assert "CAST(CAST(dm_q.`f` AS DOUBLE) AS CHAR" in mysql_export_sql("SELECT f FROM t", [
        Column("f", "float", precision=24)], PG_TEXT)  # FLOAT's own text has 6 digits


def test_a_framed_long_mariadb_row_becomes_its_copy_text_line() -> None:
    from shared.dialects.mysql_bulk import _lines

    framed = b"\\ZE6:a\tb\\\n\rR3:1.5N"
    assert _lines([b"1\tx", framed]) == b"1\tx\na\\tb\\\\\\n\\r\t1.5\t\\N\n"
    assert _lines([b"\\\\Zx"]) == b"\\\\Zx\n"  # an escaped backslash before Z is not a frame
    plain = [b"1\tx", b"", b"\\N"]
    assert _lines(plain, plain=True) == _lines(plain) == b"1\tx\n\n\\N\n" and len(plain) == 3


def test_copy_out_chunks_end_at_row_boundaries_and_count_rows() -> None:
    def run_copy(sink) -> None:  # type: ignore[no-untyped-def]
        for i in range(1000):
            sink.write(f"{i}\trow\n".encode())

    chunks = list(copy_out_chunks(run_copy, lambda: None, chunk_bytes=100))
    assert sum(n for _, n in chunks) == 1000
    assert all(payload.endswith(b"\n") and payload.count(b"\n") == n for payload, n in chunks)
    assert b"".join(p for p, _ in chunks) == b"".join(f"{i}\trow\n".encode() for i in range(1000))


def test_copy_out_chunks_are_immutable_bytes_and_start_afresh_after_each_cut() -> None:
    rows = [b"%d\t%s\n" % (i, b"x" * (i % 7)) for i in range(100)]

    def run_copy(sink) -> None:  # type: ignore[no-untyped-def]
        for row in rows:
            sink.write(memoryview(row) if row.startswith(b"5") else row)  # any bytes-like row

    chunks = list(copy_out_chunks(run_copy, lambda: None, chunk_bytes=40, max_rows=6))
    assert all(type(payload) is bytes for payload, _ in chunks)
    assert all(n <= 6 and (len(payload) < 40 + 10 or n == 1) for payload, n in chunks)
    assert b"".join(p for p, _ in chunks) == b"".join(rows) and sum(n for _, n in chunks) == 100
    cut = 0  # each chunk ends at the first row that reaches a limit
    for payload, n in chunks[:-1]:
        sizes = [len(r) for r in rows[cut:cut + n]]
        assert n == 6 or (sum(sizes) >= 40 and sum(sizes[:-1]) < 40)
        cut += n


def test_copy_out_chunks_of_an_empty_copy_are_none() -> None:
    assert list(copy_out_chunks(lambda sink: None, lambda: None, chunk_bytes=10)) == []


def test_the_copy_reader_hands_each_piece_over_whole_and_slices_only_huge_ones(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shared.dialects import postgresql_load

    payload = b"r" * 100
    reader = postgresql_load._Pieces((b"head", payload, b"tail"))
    got = [reader.read(8) for _ in range(4)]
    assert got == [b"head", payload, b"tail", b""] and got[1] is payload  # not copied, whatever size is asked
    monkeypatch.setattr(postgresql_load, "PIECE_MAX_BYTES", 40)
    reader = postgresql_load._Pieces((payload,))
    assert [reader.read(1 << 20) for _ in range(4)] == [b"r" * 40, b"r" * 40, b"r" * 20, b""]


def test_copy_out_chunks_raise_the_copy_error_in_the_consumer() -> None:
    def run_copy(sink) -> None:  # type: ignore[no-untyped-def]
        sink.write(b"1\n")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        list(copy_out_chunks(run_copy, lambda: None, chunk_bytes=1))


def test_closing_copy_out_chunks_early_cancels_the_copy() -> None:
    cancelled = threading.Event()

    def run_copy(sink) -> None:  # type: ignore[no-untyped-def]
        while not cancelled.is_set():
            sink.write(b"x\n")

    chunks = copy_out_chunks(run_copy, cancelled.set, chunk_bytes=10)
    next(chunks)
    chunks.close()
    assert cancelled.is_set()


def test_a_bulk_batch_round_trips_through_the_codec() -> None:
    batch = messages.Batch(execution_id=5, seq=2, first=101, fmt=PG_TEXT, data=b"1\t\\N\n2\tx\n", count=2)
    decoded = messages.decode(batch.encode(), expect=messages.Batch)
    assert (decoded.fmt, decoded.data, decoded.count, decoded.size, decoded.rows) == (PG_TEXT, batch.data, 2, 2, [])
    rows = messages.decode(messages.Batch(execution_id=5, seq=1, rows=[(1, "a")]).encode())
    assert rows.size == 1 and rows.rows == [[1, "a"]]


def test_copy_out_chunks_hold_at_most_max_rows() -> None:
    def run_copy(sink) -> None:  # type: ignore[no-untyped-def]
        for i in range(25):
            sink.write(b"r\n")

    assert [n for _, n in copy_out_chunks(run_copy, lambda: None, chunk_bytes=1 << 20, max_rows=10)] == [10, 10, 5]


_PER_4MIB = -(-BULK_CHUNK_BYTES // 300)  # 300-byte rows in a batch: the one that reaches 4 MiB ends it


@pytest.mark.parametrize("row, expected", [
    # 15-byte rows (two integers): the row cap comes first
    (b"1234567\t123456\n", [DEFAULT_BULK_BATCH_ROWS, DEFAULT_BULK_BATCH_ROWS, 50_000]),
    # 300-byte rows (a mixed table): ~4 MiB comes first, long before the row cap
    (b"x" * 299 + b"\n", [_PER_4MIB] * (250_000 // _PER_4MIB) + [250_000 % _PER_4MIB]),
])
def test_a_bulk_batch_is_cut_at_about_4_mib_or_the_bulk_row_cap_whichever_comes_first(row: bytes,
                                                                                      expected: list[int]) -> None:
    # Given 250,000 rows written by a COPY, and the extractor's default limits for bulk batches
    def run_copy(sink) -> None:  # type: ignore[no-untyped-def]
        for _ in range(250_000):
            sink.write(row)

    # When they are cut into batches
    chunks = list(copy_out_chunks(run_copy, lambda: None, chunk_bytes=BULK_CHUNK_BYTES,
                                  max_rows=DEFAULT_BULK_BATCH_ROWS))
    # Then small rows fill DM_BULK_BATCH_ROWS, not DM_BATCH_ROWS, and large rows stop at ~4 MiB
    assert [n for _, n in chunks] == expected
    assert DEFAULT_BULK_BATCH_ROWS > DEFAULT_BATCH_ROWS
    assert all(len(payload) < BULK_CHUNK_BYTES + len(row) for payload, _ in chunks)


def test_the_extractor_cuts_bulk_batches_by_its_bulk_row_cap_and_row_batches_by_the_extraction() -> None:
    from services.extractor.worker import _batches

    class Extraction:
        asked: list = []

        def bulk_batches(self, chunk_bytes: int, max_rows: int | None = None):  # type: ignore[no-untyped-def]
            self.asked.append((chunk_bytes, max_rows))
            yield b"1\n", 1

        def batches(self):  # type: ignore[no-untyped-def]
            yield [(1,)]

    extraction = Extraction()
    assert list(_batches(extraction, PG_TEXT, 1234)) == [{"fmt": PG_TEXT, "data": b"1\n", "count": 1}]
    assert extraction.asked == [(BULK_CHUNK_BYTES, 1234)]
    assert list(_batches(extraction, None, 1234)) == [{"rows": [(1,)]}]


def test_dm_bulk_batch_rows_is_its_own_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import load_settings

    assert (load_settings().batch_rows, load_settings().bulk_batch_rows) == (DEFAULT_BATCH_ROWS,
                                                                             DEFAULT_BULK_BATCH_ROWS)
    monkeypatch.setenv("DM_BATCH_ROWS", "500")
    monkeypatch.setenv("DM_BULK_BATCH_ROWS", "2000")
    assert (load_settings().batch_rows, load_settings().bulk_batch_rows) == (500, 2000)


def test_read_ahead_keeps_order_and_raises_the_source_error_in_the_consumer() -> None:
    from shared.dialects.bulkstream import read_ahead

    def chunks():  # type: ignore[no-untyped-def]
        yield from ((b"%d\n" % i, 1) for i in range(50))
        raise RuntimeError("source gone")

    got = []
    with pytest.raises(RuntimeError, match="source gone"):
        for item in read_ahead(chunks):
            got.append(item)
    assert got == [(b"%d\n" % i, 1) for i in range(50)]


def test_closing_read_ahead_early_closes_the_source_on_its_thread() -> None:
    from shared.dialects.bulkstream import read_ahead

    closed = threading.Event()

    def chunks():  # type: ignore[no-untyped-def]
        try:
            while True:
                yield b"x\n", 1
        finally:
            closed.set()

    items = read_ahead(chunks)
    next(items)
    items.close()
    assert closed.is_set()
