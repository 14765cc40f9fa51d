"""The benchmark's two extra table shapes, PostgreSQL → PostgreSQL only.

* ``narrow``: 2 integer columns (``id bigint`` key, ``v int``), 10,000,000 rows by default:
  per-row overhead dominates (framing, batches, messages).
* ``wide``: 100 mixed columns (the key and 99 columns cycling through int, bigint, numeric,
  double, boolean, varchar, text, date and timestamptz), 200,000 rows by default: per-value
  work dominates.

The standard shape (10 mixed columns, :mod:`bench.data`) is ``standard``. Rows are generated
inside the server with ``generate_series``; a source already holding the wanted row count is
kept. Each shape's case is a truncate_load into an empty destination with a primary key,
against its own psql COPY pipes (text and binary) — see :func:`bench.baselines.psql_pipe`.
"""
from __future__ import annotations

from dataclasses import dataclass

from bench import data

# (type, value expression of g and the column number n)
_WIDE_TYPES = (
    ("int", "(g + {n}) % 100000"),
    ("bigint", "g::bigint * {n} * 1009"),
    ("numeric(18,4)", "((g + {n}) % 1000000) / 100.0"),
    ("double precision", "(g + {n}) / 7.0"),
    ("boolean", "(g + {n}) % 3 = 0"),
    ("varchar(40)", "'v{n} ' || g"),
    ("text", "CASE WHEN (g + {n}) % 10 = 0 THEN NULL ELSE 'text {n} ' || g || E' tab\\there' END"),
    ("date", "date '2000-01-01' + ((g + {n}) % 9000)"),
    ("timestamptz", "timestamptz '2024-01-01 00:00:00+00' + (g + {n}) * interval '1 second'"),
)
WIDE_COLUMNS = 100


@dataclass(frozen=True)
class Shape:
    name: str
    default_rows: int
    ddl: str  # PostgreSQL column list in parentheses
    rows_sql: str  # SELECT … FROM generate_series({lo}, {hi}) g

    @property
    def source(self) -> str:
        return "bench_src" if self.name == "standard" else f"bench_{self.name}_src"

    @property
    def dest(self) -> str:
        return "bench_dst" if self.name == "standard" else f"bench_{self.name}_dst"

    @property
    def case(self) -> str:
        """The shape's truncate_load case (the standard shape has the issue-7 case names)."""
        return "pg_pg_truncate" if self.name == "standard" else f"{self.name}_pg_pg_truncate"

    @property
    def select(self) -> str:
        return f"SELECT * FROM {self.source}"


def _wide() -> tuple[str, str]:
    cols, values = ["id bigint PRIMARY KEY"], ["g"]
    for n in range(1, WIDE_COLUMNS):
        kind, expr = _WIDE_TYPES[(n - 1) % len(_WIDE_TYPES)]
        cols.append(f"c{n} {kind}")
        values.append(expr.format(n=n))
    return "(" + ", ".join(cols) + ")", "SELECT " + ", ".join(values) + " FROM generate_series({lo}, {hi}) g"


_WIDE_DDL, _WIDE_ROWS = _wide()
SHAPES = {
    "standard": Shape("standard", 1_000_000, data.PG_DDL, data.PG_ROWS),
    "narrow": Shape("narrow", 10_000_000, "(id bigint PRIMARY KEY, v int)",
                    "SELECT g, (g * 7) % 1000003 FROM generate_series({lo}, {hi}) g"),
    "wide": Shape("wide", 200_000, _WIDE_DDL, _WIDE_ROWS),
}


def build(shape: Shape, rows: int, *, rebuild: bool = False) -> None:
    """The shape's source table in PostgreSQL with ``rows`` rows (kept when already that size)."""
    data.ensure_databases()
    engine = data.pg()
    if rebuild or data._count(engine, shape.source) != rows:
        with data._connect(engine) as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {shape.source}")
            conn.exec_driver_sql(f"CREATE TABLE {shape.source} {shape.ddl}")
            conn.exec_driver_sql(f"INSERT INTO {shape.source} {shape.rows_sql.format(lo=1, hi=rows)}")
            conn.exec_driver_sql(f"VACUUM ANALYZE {shape.source}")
    engine.dispose()


def empty(shape: Shape, table: str | None = None) -> None:
    """A fresh, empty destination shaped like the source (``table``: default the shape's destination)."""
    engine = data.pg()
    with data._connect(engine) as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table or shape.dest}")
        conn.exec_driver_sql(f"CREATE TABLE {table or shape.dest} {shape.ddl}")
    engine.dispose()


def megabytes(shape: Shape) -> float:
    """Size of the source as PostgreSQL COPY text."""
    engine = data.pg()
    with engine.connect() as conn:
        size = conn.exec_driver_sql(f"SELECT sum(octet_length(t::text) - 1) FROM {shape.source} t").scalar_one()
    engine.dispose()
    return float(size or 0) / 1e6


def verify(shape: Shape, rows: int) -> str:
    """Row count and every destination row equal to its source row (outside the timing)."""
    engine = data.pg()
    with engine.connect() as conn:
        count = conn.exec_driver_sql(f"SELECT count(*) FROM {shape.dest}").scalar_one()
        differ = conn.exec_driver_sql(f"SELECT count(*) FROM {shape.source} s JOIN {shape.dest} d USING (id) "
                                      "WHERE s IS DISTINCT FROM d").scalar_one()
    engine.dispose()
    if count != rows or differ:
        return f"WRONG: {count} rows (expected {rows}), {differ} differ from the source"
    return "ok"
