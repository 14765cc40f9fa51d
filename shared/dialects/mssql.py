"""SQL Server: both sides (``mssql_source.py``, ``mssql_destination.py``) and the core facts."""
from __future__ import annotations

from sqlalchemy.engine import URL

from shared.dialects.base import Dialect
from shared.dialects.mssql_destination import MSSQLDestination
from shared.dialects.mssql_source import MSSQLSource, read_isolation_level

DEFAULT_MSSQL_ODBC_DRIVER = "ODBC Driver 18 for SQL Server"


class MSSQLDialect(MSSQLSource, MSSQLDestination, Dialect):
    """SQL Server."""

    name = "mssql"
    driver = "mssql+pyodbc"
    default_port = 1433

    def complete_url(self, url: URL) -> URL:
        """The default ODBC driver unless the project names one (or gives a whole ``odbc_connect``)."""
        if "driver" not in url.query and "odbc_connect" not in url.query:
            return url.update_query_dict({"driver": DEFAULT_MSSQL_ODBC_DRIVER})
        return url


__all__ = ["DEFAULT_MSSQL_ODBC_DRIVER", "MSSQLDialect", "read_isolation_level"]
