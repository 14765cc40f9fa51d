"""Counts and failed-row reports."""
from __future__ import annotations

from shared.load import FailedRow, LoadCounts
from shared.load.results import MAX_TEXT_CHARS, failed_row, summarize_value


def test_counts_add_up_and_serialise() -> None:
    counts = LoadCounts(rows_inserted=2)
    counts.add(LoadCounts(rows_inserted=1, rows_updated=3, rows_skipped=4, rows_deleted=5, rows_failed=6))
    assert counts.to_dict() == {"rows_inserted": 3, "rows_updated": 3, "rows_skipped": 4, "rows_deleted": 5,
                                "rows_failed": 6}
    snapshot = counts.copy()
    counts.rows_failed += 1
    assert snapshot.rows_failed == 6


def test_long_text_is_truncated_and_bytes_shown_as_a_hex_prefix() -> None:
    assert summarize_value("x" * 1000) == "x" * MAX_TEXT_CHARS + "… (1000 chars)"
    assert summarize_value(b"\x00\x01") == "0x0001"
    assert summarize_value(bytes(100)).endswith("… (100 bytes)")
    assert summarize_value(7) == 7


def test_a_failed_row_names_its_values_and_time() -> None:
    row = failed_row(42, ["id", "blob"], (1, b"\xff"), "boom")
    assert isinstance(row, FailedRow)
    assert (row.position, row.values, row.error) == (42, {"id": 1, "blob": "0xff"}, "boom")
    assert row.at.utcoffset().total_seconds() == 0
