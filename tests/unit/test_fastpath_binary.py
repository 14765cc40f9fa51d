"""The binary pass-through's pure parts (shared.dialects.pgbinary): chunking, the format, which types pass."""
from __future__ import annotations

from collections import namedtuple

import pytest

from shared.dialects import pgbinary
from shared.dialects.bulkstream import copy_out_chunks

ROW = b"\x00\x01\x00\x00\x00\x04\x00\x00\x00\x07"  # one int4 field
Described = namedtuple("Described", "name type_code internal_size precision scale")


def _chunks(writes: list[bytes], **kw: int) -> list[tuple[bytes, int]]:
    def run_copy(sink: object) -> None:
        for w in writes:
            sink.write(w)  # type: ignore[attr-defined]
    return list(copy_out_chunks(run_copy, lambda: None, binary=True, **{"chunk_bytes": 1 << 20, **kw}))


def test_the_header_and_trailer_are_removed_and_rows_counted() -> None:
    chunks = _chunks([pgbinary.HEADER + ROW, ROW, ROW, pgbinary.TRAILER], chunk_bytes=20)
    assert chunks == [(ROW * 2, 2), (ROW, 1)]
    assert pgbinary.framed(ROW) == pgbinary.HEADER + ROW + pgbinary.TRAILER


def test_an_empty_result_gives_no_chunk_and_a_header_extension_is_skipped() -> None:
    assert _chunks([pgbinary.HEADER + pgbinary.TRAILER]) == []
    extended = pgbinary.SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x03abc"
    assert _chunks([extended + ROW, pgbinary.TRAILER]) == [(ROW, 1)]


def test_a_chunk_cut_after_the_trailer_leaves_the_trailer_out() -> None:
    # the trailer is a write like a row: it can reach the byte or the row limit and cut the chunk
    assert _chunks([pgbinary.HEADER + ROW, ROW, pgbinary.TRAILER], chunk_bytes=21) == [(ROW * 2, 2)]
    assert _chunks([pgbinary.HEADER + ROW, ROW, pgbinary.TRAILER], max_rows=3) == [(ROW * 2, 2)]
    assert _chunks([pgbinary.HEADER, ROW, ROW, pgbinary.TRAILER], max_rows=2) == [(ROW * 2, 2)]


def test_a_row_ending_in_the_trailer_bytes_is_kept() -> None:
    row = b"\x00\x01\x00\x00\x00\x02\xff\xff"  # one field whose value ends like a trailer
    assert _chunks([pgbinary.HEADER + row, pgbinary.TRAILER]) == [(row, 1)]
    assert _chunks([pgbinary.HEADER + row, row, pgbinary.TRAILER], chunk_bytes=8) == [(row, 1), (row, 1)]
    assert _chunks([pgbinary.HEADER + ROW, row, pgbinary.TRAILER], chunk_bytes=18) == [(ROW + row, 2)]


def test_the_framing_pieces_make_the_framed_stream() -> None:
    assert b"".join(pgbinary.framing(ROW)) == pgbinary.framed(ROW)
    assert pgbinary.framing(ROW)[1] is ROW  # the rows are handed on, not copied


def test_a_stream_without_the_signature_is_an_error() -> None:
    with pytest.raises(ValueError):
        _chunks([ROW])


def test_the_format_names_the_source_types_with_their_typmods() -> None:
    described = [Described("a", 23, 4, None, None), Described("n", 1700, 12, 12, 2),
                 Described("u", 1700, -1, 0xFFFF, 0xFFFF), Described("v", 1043, 14, None, None),
                 Described("w", 1043, -1, None, None), Described("t", 1114, 8, None, None)]
    types = pgbinary.source_types(described)
    assert types == [(23, -1), (1700, (12 << 16 | 2) + 4), (1700, -1), (1043, 18), (1043, -1), (1114, -1)]
    assert pgbinary.types_of(pgbinary.format_for(types)) == types
    with pytest.raises(ValueError):
        pgbinary.types_of("pg_text")
    with pytest.raises(ValueError):
        pgbinary.types_of("pg_binary:x.1")


NUMERIC_10_2 = (1700, (10 << 16 | 2) + 4)


@pytest.mark.parametrize("source, dest, passes", [
    ((23, -1), (23, -1), True),
    ((23, -1), (20, -1), False),  # int4 into int8
    (NUMERIC_10_2, NUMERIC_10_2, True),
    (NUMERIC_10_2, (1700, (12 << 16 | 4) + 4), False),
    ((1700, -1), (1700, -1), True),
    ((1043, 14), (1043, 24), False),  # varchar(10) into varchar(20)
    ((1114, -1), (1114, -1), True),
    ((1114, -1), (1114, 3), False),  # into timestamp(3): could round
    ((1186, -1), (1186, 6), False),
    ((114, -1), (3802, -1), False),  # json into jsonb
    ((1007, -1), (1007, -1), False),  # int4[]: arrays carry element OIDs
    ((16385, -1), (16385, -1), False),  # an enum or another user type
])
def test_only_exactly_the_same_built_in_type_passes(source: tuple, dest: tuple, passes: bool) -> None:
    assert pgbinary.carries([source], [dest]) is passes


def test_a_missing_or_ambiguous_destination_column_does_not_pass() -> None:
    assert not pgbinary.carries([(23, -1)], [None])
    assert not pgbinary.carries([], [])
    assert pgbinary.by_lower_name({"Id": (23, -1), "id": (20, -1), "x": (25, -1)}) == {"id": None, "x": (25, -1)}
