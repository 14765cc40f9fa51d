"""The bulk export's packet reader (shared.dialects.mysql_rows) reads what PyMySQL reads.

Given the bytes a server sends for a one-column result (short rows, an empty string, NULL,
rows with 2-, 3- and 8-byte lengths, a row split over 16 MB packets, the EOF packet, an ERR
packet mid-stream, a wrong sequence id, a connection lost mid-packet), arriving in pieces
that cut packet headers anywhere, when they are read once through PyMySQL's own unbuffered
reading and once through the packet reader, then the values, the error (type and arguments)
and the state left on the connection and the result are the same.
"""
from __future__ import annotations

import io
import struct
from types import SimpleNamespace

import pymysql
import pytest
from pymysql.connections import MySQLResult

from shared.dialects.mysql_rows import MAX_PACKET_LEN, packet_rows


def packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 255]) + payload


def lenenc(value: bytes | None) -> bytes:
    if value is None:
        return b"\xfb"
    n = len(value)
    if n < 251:
        head = bytes([n])
    elif n < 1 << 16:
        head = b"\xfc" + n.to_bytes(2, "little")
    elif n < 1 << 24:
        head = b"\xfd" + n.to_bytes(3, "little")
    else:
        head = b"\xfe" + n.to_bytes(8, "little")
    return head + value


EOF = b"\xfe" + struct.pack("<hh", 3, 0x0022)  # 3 warnings, autocommit + no index used
KILLED = b"\xff" + (1317).to_bytes(2, "little") + b"#70100Query execution was interrupted"


def stream(values: list[bytes | None], *, end: bytes = EOF, seq: int = 3) -> bytes:
    """The row packets of ``values`` from sequence id ``seq`` on (payloads of 16 MB and more
    split into 0xFFFFFF-byte packets), then ``end`` (b"": none)."""
    out = []
    for value in values:
        payload = lenenc(value)
        while True:
            out.append(packet(seq, payload[:MAX_PACKET_LEN]))
            seq += 1
            if len(payload) < MAX_PACKET_LEN:
                break
            payload = payload[MAX_PACKET_LEN:]
    if end:
        out.append(packet(seq, end))
    return b"".join(out)


class Pieces(io.RawIOBase):
    """A socket that delivers ``data`` in reads of at most ``piece`` bytes."""

    def __init__(self, data: bytes, piece: int) -> None:
        self._data, self._pos, self._piece = data, 0, piece

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:
        n = min(len(b), self._piece, len(self._data) - self._pos)
        b[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


def connection(data: bytes, piece: int, seq: int = 3) -> pymysql.cursors.SSCursor:
    """An ``SSCursor`` of a PyMySQL connection (never connected) whose unbuffered one-column
    result is being read from ``data``, as after ``execute``."""
    conn = pymysql.connections.Connection(defer_connect=True)
    conn._sock = SimpleNamespace(settimeout=lambda t: None, close=lambda: None)
    conn._rfile = io.BufferedReader(Pieces(data, piece))
    conn._current_timeout = conn._read_timeout
    conn._next_seq_id, conn.server_status = seq, 2
    result = _Quiet(conn)
    result.field_count, result.converters, result.unbuffered_active = 1, [(None, None)], True
    conn._result = result
    cursor = _QuietCursor(conn)
    cursor._result, cursor._executed = result, "SELECT …"
    return cursor


class _Quiet(MySQLResult):
    """No second read at garbage collection of a stream left broken or unfinished."""

    def __del__(self) -> None:
        pass


class _QuietCursor(pymysql.cursors.SSCursor):
    def close(self) -> None:
        pass

    __del__ = close


def read(cursor: pymysql.cursors.SSCursor, fast: bool, size: int = 3) -> tuple[list, object]:
    """(values, the exception raised or None), fetching ``size`` at a time as the export does."""
    values: list = []
    try:
        reader = packet_rows(cursor) if fast else None
        assert reader is not None or not fast
        while batch := (reader.fetchmany(size) if fast else [r[0] for r in cursor.fetchmany(size)]):
            values += batch
    except Exception as exc:  # noqa: BLE001 - compared below
        return values, exc
    return values, None


def state(cursor: pymysql.cursors.SSCursor) -> tuple:
    conn, result = cursor.connection, cursor._result
    return (conn._next_seq_id, conn._sock is None, result.unbuffered_active, result.warning_count, result.has_next,
            result.connection is None, conn.server_status)


def same_as_pymysql(data: bytes, pieces: tuple[int, ...] = (1, 2, 3, 5, 7, 4096, 1 << 20), *,
                    seq: int = 3) -> tuple[list, object]:
    cursor = connection(data, 1 << 20, seq)
    expected_values, expected_error = read(cursor, fast=False)
    expected_state = state(cursor)
    for piece in pieces:
        cursor = connection(data, piece, seq)
        values, error = read(cursor, fast=True)
        assert len(values) == len(expected_values) and values == expected_values, piece  # short message
        assert type(error) is type(expected_error) and getattr(error, "args", None) == getattr(
            expected_error, "args", None), (piece, error, expected_error)
        assert state(cursor) == expected_state, piece
    return expected_values, expected_error


def test_short_long_empty_and_null_values_in_pieces_that_cut_headers_anywhere() -> None:
    values = [b"1\tx", b"", None, b"a" * 250, b"b" * 251, b"c" * 70_000, b"\\ZE1:x", b"last"]
    got, error = same_as_pymysql(stream(values))
    assert got == values and error is None


def test_the_reader_ends_at_the_eof_packet_with_its_warning_count() -> None:
    cursor = connection(stream([b"a"]), 1 << 20)
    reader = packet_rows(cursor)
    assert reader.fetchmany(10) == [b"a"]
    assert reader.fetchmany(10) == []
    assert cursor._result.warning_count == 3 and not cursor._result.unbuffered_active
    assert cursor.connection._next_seq_id == 5


def test_sequence_ids_wrap_after_255() -> None:
    got, error = same_as_pymysql(stream([str(i).encode() for i in range(600)], seq=250), pieces=(3, 1 << 20),
                                 seq=250)
    assert len(got) == 600 and error is None


def test_a_row_over_16_mb_split_into_several_packets() -> None:
    big = bytes(range(256)) * (MAX_PACKET_LEN // 256 + 300)
    got, error = same_as_pymysql(stream([b"x", big, b"y"]), pieces=(65_536, 1 << 20))
    assert got == [b"x", big, b"y"] and error is None


def test_a_payload_of_exactly_0xffffff_bytes_ends_with_an_empty_packet() -> None:
    exact = b"z" * (MAX_PACKET_LEN - 4)  # + 4 length bytes (0xFD + 3) = 0xFFFFFF: an empty packet follows
    data = stream([exact, b"after"])
    assert packet(4, b"") in data
    got, error = same_as_pymysql(data, pieces=(1 << 20,))
    assert got == [exact, b"after"] and error is None


def test_an_error_packet_mid_stream_raises_what_pymysql_raises() -> None:
    got, error = same_as_pymysql(stream([b"a", b"b", b"c", b"d"], end=KILLED))
    assert got == [b"a", b"b", b"c"]  # the batch the error ends is lost, as with the cursor
    assert isinstance(error, pymysql.err.OperationalError) and error.args == (1317, "Query execution was interrupted")


def test_a_short_0xfe_packet_is_the_end_and_a_long_one_is_a_row_length() -> None:
    """EOF is 0xFE and fewer than 9 bytes; 0xFE then 8 length bytes starts a row (as PyMySQL)."""
    truncated_row = b"\xfe" + (20).to_bytes(8, "little") + b"only ten b"  # says 20 bytes, has 10
    got, error = same_as_pymysql(stream([b"a", b"b", b"c"], end=truncated_row) + packet(7, EOF))
    assert got == [b"a", b"b", b"c"] and isinstance(error, AssertionError)  # PyMySQL's, for a packet too short


def test_a_wrong_sequence_id_or_a_lost_connection_fails_as_in_pymysql() -> None:
    data = stream([b"a", b"b"])
    wrong = data[:9] + bytes([99]) + data[10:]  # the second packet's sequence id
    _, error = same_as_pymysql(wrong)
    assert isinstance(error, pymysql.err.InternalError)
    _, error = same_as_pymysql(data[:12])  # the server went away mid-row
    assert isinstance(error, pymysql.err.OperationalError) and error.args[0] == 2013


def test_bytes_after_the_eof_packet_close_the_connection() -> None:
    cursor = connection(stream([b"a"]) + b"\x01", 1 << 20)
    values, error = read(cursor, fast=True, size=1)
    assert values == [b"a"] and isinstance(error, pymysql.err.InternalError)
    assert cursor.connection._sock is None


def test_results_it_was_not_written_for_are_read_by_the_cursor() -> None:
    cursor = connection(stream([b"a"]), 1 << 20)
    cursor._result.field_count = 2
    assert packet_rows(cursor) is None
    cursor = connection(stream([b"a"]), 1 << 20)
    cursor._result.converters = [("utf8", None)]  # values decoded to str
    assert packet_rows(cursor) is None
    cursor = connection(stream([b"a"]), 1 << 20)
    cursor.connection.client_flag |= pymysql.constants.CLIENT.DEPRECATE_EOF  # the end is an OK packet
    assert packet_rows(cursor) is None
    cursor = connection(stream([b"a"]), 1 << 20)
    cursor._result.unbuffered_active = False
    assert packet_rows(cursor) is None


def test_an_unknown_pymysql_version_is_read_by_the_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pymysql, "VERSION", (9, 0, 0, "final"))
    assert packet_rows(connection(stream([b"a"]), 1 << 20)) is None


def test_plain_tells_whether_a_batch_can_be_joined_as_it_is() -> None:
    """A batch is plain when every value is bytes not starting with ``\\Z`` (a framed long row)."""
    values = [b"a", b"\\ZE1:x", b"b", None, b"c" * 300, b"\\Z" + b"c" * 300, b"\\Z" + b"e" * 70_000, b"d", b"e"]
    for piece in (1, 3, 1 << 20):
        reader = packet_rows(connection(stream(values), piece))
        seen = [(reader.fetchmany(1), reader.plain) for _ in range(len(values))]
        assert seen == [([v], v is not None and not v.startswith(b"\\Z")) for v in values]
        assert reader.fetchmany(2) == [] and reader.plain
