"""Reading a one-column unbuffered MySQL/MariaDB result straight from PyMySQL's socket buffer.

PyMySQL reads a streamed result one row at a time (``SSCursor.fetchmany`` → ``_read_packet`` →
a ``MysqlPacket`` and a row tuple per row: ~3.5 µs a row). The bulk export's rows are one
string each (a COPY text line built by the server), so :class:`PacketRows` reads the rest of
the result in large reads from the connection's buffered socket file and cuts the text-protocol
row packets in one tight loop: a packet is a 3-byte length and a sequence id, its payload one
length-encoded string (``0xFB``: NULL); a payload of ``0xFFFFFF`` bytes continues in the next
packet (rows over 16 MB). Every packet that is not a plain row (the EOF at the end, an ERR
mid-stream after ``KILL QUERY`` or a server error, a row split over several packets) goes
through PyMySQL's own packet class and result methods, so errors, their messages and the state
left on the connection are what ``SSCursor`` leaves: sequence id, ``unbuffered_active``,
``warning_count``/``has_next`` of the result, a force-closed connection after a lost socket.

This relies on PyMySQL internals (``_rfile``, ``_next_seq_id``, ``_result``, ``_force_close``,
``_read_timeout``): :func:`packet_rows` checks the version and the attributes, and returns
None (read through the cursor as before) when they are not what it was written against.
"""
from __future__ import annotations

import errno
import struct
from typing import Any

from shared.dialects.mysql_bulk import MARK

KNOWN_PYMYSQL = ((1, 1), (1, 2))  # versions whose reading internals this module was checked against
READ_BYTES = 1 << 18  # one socket read; what the server has sent so far, at most this
MAX_PACKET_LEN = 0xFFFFFF
# the packet header (length | sequence id << 24), the payload's first byte (a string length below
# 251, or 0xFC: two length bytes follow) and the two bytes after it
_HEAD = struct.Struct("<IBH")
_MARKED = int.from_bytes(MARK, "little")  # a value starting with MARK, seen in the two bytes after a length


def packet_rows(cursor: Any) -> "PacketRows | None":
    """A fast reader of ``cursor``'s active unbuffered one-column result whose values arrive
    undecoded (``use_unicode`` off when it was executed), or None: use the cursor."""
    try:
        import pymysql
        from pymysql.constants import CLIENT
        from pymysql.protocol import MysqlPacket  # noqa: F401 - what the reader builds for unusual packets
    except ImportError:
        return None
    if tuple(getattr(pymysql, "VERSION", ())[:2]) not in KNOWN_PYMYSQL:
        return None
    conn = getattr(cursor, "connection", None)
    result = getattr(cursor, "_result", None)
    needed = ("_rfile", "_sock", "_next_seq_id", "_read_timeout", "_current_timeout", "_force_close", "_result",
              "client_flag", "encoding")
    if conn is None or result is None or not all(hasattr(conn, a) for a in needed):
        return None
    if (conn._result is not result or not getattr(result, "unbuffered_active", False)  # noqa: SLF001
            or getattr(result, "field_count", 0) != 1 or getattr(result, "converters", None) != [(None, None)]
            or conn.client_flag & CLIENT.DEPRECATE_EOF or not hasattr(conn._rfile, "read1")):  # noqa: SLF001
        return None
    return PacketRows(conn, result)


class PacketRows:
    """``fetchmany`` of the result's values (bytes, None for NULL) read from the packets."""

    def __init__(self, conn: Any, result: Any) -> None:
        self._conn, self._result = conn, result
        self._buf, self._pos = b"", 0
        self._seq = conn._next_seq_id  # noqa: SLF001
        self.done, self.plain = False, True

    def fetchmany(self, size: int) -> list[bytes | None]:
        """Up to ``size`` values; fewer only at the end of the result (then ``[]`` ever after).

        :attr:`plain` tells whether every value of the batch is bytes that does not start with
        ``\\Z`` (then the export joins them as they are)."""
        out: list[bytes | None] = []
        self.plain = True
        if self.done:
            return out
        append, unpack = out.append, _HEAD.unpack_from
        buf, pos, seq = self._buf, self._pos, self._seq
        have, n, plain = len(buf), 0, True
        while n < size:
            if pos + 7 <= have:
                head, first, after = unpack(buf, pos)
                stop = pos + 4 + (head & MAX_PACKET_LEN)
                if stop <= have and head >> 24 == seq:
                    if first < 251 and stop == pos + 5 + first:  # one packet, a 1-byte string length
                        append(buf[pos + 5:stop])
                        if after == _MARKED:
                            plain = False
                        pos, seq, n = stop, (seq + 1) & 255, n + 1
                        continue
                    if first == 0xFC and stop == pos + 7 + after:  # one packet, a 2-byte string length
                        value = buf[pos + 7:stop]
                        if value.startswith(MARK):
                            plain = False
                        append(value)
                        pos, seq, n = stop, (seq + 1) & 255, n + 1
                        continue
            value = self._packet(buf, pos, seq)  # raises with the reader's state where the packet left it
            buf, pos, seq = self._buf, self._pos, self._seq
            have = len(buf)
            if self.done:
                break
            if value is None or value.startswith(MARK):
                plain = False
            append(value)
            n += 1
        self._buf, self._pos, self._seq = buf, pos, seq
        self._conn._next_seq_id = seq  # noqa: SLF001
        self.plain = plain
        return out

    # -- anything but a short row -------------------------------------------------------
    def _packet(self, buf: bytes, pos: int, seq: int) -> bytes | None:
        """The value of the next packet, read whole as PyMySQL's ``_read_packet`` and
        ``_read_rowdata_packet_unbuffered`` read it (the reader's state moves past it before it
        is judged, as PyMySQL's); sets :attr:`done` at the EOF packet."""
        from pymysql.protocol import MysqlPacket

        self._buf, self._pos, self._seq = buf, pos, seq
        self._conn._next_seq_id = seq  # noqa: SLF001
        parts = []
        while True:
            if pos + 4 > len(buf):
                buf, pos = self._more(buf, pos, 4)
            head = int.from_bytes(buf[pos:pos + 4], "little")
            length, number = head & MAX_PACKET_LEN, head >> 24
            if number != seq:
                self._lost_sequence(number, seq)
            seq = (seq + 1) & 255
            self._seq = self._conn._next_seq_id = seq  # noqa: SLF001 - counted before the body is read
            if pos + 4 + length > len(buf):
                buf, pos = self._more(buf, pos, 4 + length)
            parts.append(buf[pos + 4:pos + 4 + length])
            pos += 4 + length
            self._buf, self._pos = buf, pos
            if length < MAX_PACKET_LEN:
                break
        packet = MysqlPacket(parts[0] if len(parts) == 1 else b"".join(parts), self._conn.encoding)
        result = self._result
        if packet.is_error_packet():
            result.unbuffered_active = False
            self.done = True
            packet.raise_for_error()
        if result._check_packet_is_eof(packet):  # noqa: SLF001 - warning_count, has_next
            result.unbuffered_active = False
            result.connection = None
            result.rows = None
            self.done = True
            self._buf, self._pos = b"", 0
            if pos != len(buf):  # nothing follows the EOF of a single statement's result
                self._conn._force_close()  # noqa: SLF001
                from pymysql import err
                raise err.InternalError(f"{len(buf) - pos} unexpected bytes after the result")
            return None
        return packet.read_length_coded_string()

    def _more(self, buf: bytes, pos: int, need: int) -> tuple[bytes, int]:
        """``buf[pos:]`` extended with socket reads to at least ``need`` bytes."""
        parts = [buf[pos:]]
        have = len(parts[0])
        while have < need:
            data = self._read(max(READ_BYTES, need - have))
            parts.append(data)
            have += len(data)
        return b"".join(parts), 0

    def _read(self, size: int) -> bytes:
        """One read of the socket, with PyMySQL's ``_read_bytes`` errors and timeout."""
        from pymysql import err
        from pymysql.constants import CR

        conn = self._conn
        if conn._current_timeout != conn._read_timeout:  # noqa: SLF001
            conn._sock.settimeout(conn._read_timeout)  # noqa: SLF001
            conn._current_timeout = conn._read_timeout  # noqa: SLF001
        while True:
            try:
                data = conn._rfile.read1(size)  # noqa: SLF001
                break
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                conn._force_close()  # noqa: SLF001
                raise err.OperationalError(CR.CR_SERVER_LOST, f"Lost connection to MySQL server during query ({e})")
            except BaseException:
                conn._force_close()  # noqa: SLF001
                raise
        if not data:
            conn._force_close()  # noqa: SLF001
            raise err.OperationalError(CR.CR_SERVER_LOST, "Lost connection to MySQL server during query")
        return data

    def _lost_sequence(self, number: int, expected: int) -> None:
        from pymysql import err
        from pymysql.constants import CR

        self._conn._force_close()  # noqa: SLF001
        self.done = True
        if number == 0:  # MariaDB sends its error packet with sequence 0 when it shuts down
            raise err.OperationalError(CR.CR_SERVER_LOST, "Lost connection to MySQL server during query")
        raise err.InternalError(f"Packet sequence number wrong - got {number} expected {expected}")
