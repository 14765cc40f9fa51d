"""MySQL and MariaDB: both sides (``mysql_source.py``, ``mysql_destination.py``) and the core facts."""
from __future__ import annotations

from typing import Any

from shared.dialects.base import Dialect
from shared.dialects.mysql_destination import MySQLDestination
from shared.dialects.mysql_source import MySQLSource


class MySQLDialect(MySQLSource, MySQLDestination, Dialect):
    """MySQL and MariaDB."""

    name = "mysql"
    driver = "mysql+pymysql"
    default_port = 3306
    connect_defaults: dict[str, Any] = {"charset": "utf8mb4", "local_infile": True, "connect_timeout": 10}

    def reflected_column_name(self, name: str) -> str:
        """SQLAlchemy reads names from SHOW CREATE TABLE and leaves a backtick doubled."""
        return name.replace("``", "`")
