"""SQL of the loader's verification (:mod:`shared.load.verify`) that differs per engine.

The row hash is the one :mod:`shared.dialects.checksum` defines (MD5 of the framed canonical
text). Verification computes it on two tables of the same database and the same column types
(the staging copy and the destination), so both sides always use the same expression.
"""
from __future__ import annotations

import sqlalchemy as sa

from shared.dialects.checksum import ChecksumSQL, canonical_kind, register_sqlite_functions
from shared.dialects.loading import compile_sql, kind_of, temp_table

RH, FRESH = "dm_rh", "dm_fresh"


def create_verify_table(conn: sa.Connection, name: str, target: sa.Table, key: list[str], *,
                        temp_prefix: str = "TEMPORARY") -> sa.TableClause:
    """A session temporary table: the key columns (typed like the destination's), the row hash
    ``dm_rh`` and ``dm_fresh`` (1: the row was new to the destination). Indexed on the key; on
    MySQL/MariaDB the index is declared in the CREATE itself (CREATE INDEX commits implicitly)."""
    select = sa.select(*[target.c[k] for k in key], sa.cast(sa.null(), sa.String(32)).label(RH),
                       sa.cast(sa.literal(1), sa.Integer).label(FRESH)).where(sa.false())
    prep = conn.dialect.identifier_preparer
    cols = ", ".join(prep.quote(k) for k in key)
    index = f"(INDEX ({cols})) " if key and conn.dialect.name == "mysql" else ""
    conn.exec_driver_sql(f"CREATE {temp_prefix} TABLE {prep.quote(name)} {index}AS "
                         f"{compile_sql(select, conn.dialect)}")
    if key and not index:
        conn.exec_driver_sql(f"CREATE INDEX {prep.quote(name + '_ix')} ON {prep.quote(name)} ({cols})")
    return temp_table(name, [*key, RH, FRESH])


class RowHash:
    """The row-hash expression of the loaded columns of one destination, for any table alias."""

    def __init__(self, conn: sa.Connection, target: sa.Table, columns: list[str]) -> None:
        self.cs = ChecksumSQL(conn.dialect.name)  # ConfigError for SQL Server
        self.prep = conn.dialect.identifier_preparer
        self.columns = columns
        self.kinds = [canonical_kind(kind_of(target.c[c].type)) for c in columns]
        if conn.dialect.name == "sqlite":  # both sides in one session: no other setting matters
            register_sqlite_functions(conn.connection.dbapi_connection)

    def of(self, alias: str) -> str:
        """MD5 (32 hex digits) of the framed canonical text of ``alias``'s loaded columns."""
        marks = [f"{alias}.dm_col_{i}_" for i in range(len(self.columns))]
        sql = self.cs.md5(self.cs.row_text(marks, self.kinds))
        if getattr(self.prep, "_double_percents", False):  # run through exec_driver_sql: DATE_FORMAT's '%Y'
            sql = sql.replace("%", "%%")
        for i in reversed(range(len(self.columns))):  # quoted names come doubled already where needed
            sql = sql.replace(f"{alias}.dm_col_{i}_", f"{alias}.{self.prep.quote(self.columns[i])}")
        return sql

    def hash_sum(self, md5_expr: str) -> str:
        """Exact sum of the 60-bit prefixes of ``md5_expr`` (an aggregate)."""
        return self.cs.hash_sum(md5_expr)
