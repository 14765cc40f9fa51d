"""Project ``options``: the allow-list, one table per engine.

A project's ``options`` (and its URL's query) reach the database driver, and some driver
options run code or redirect the connection (MySQL ``init_command``, ``read_default_file``,
``client_flag``; libpq ``options=-c …``, ``service``, ``passfile``; ODBC ``odbc_connect``;
SQLite ``uri``). So only the options listed here are accepted; anything else is a 422
naming it. Two kinds share the tables:

- driver options (``driver=True``) are passed to the driver as URL query parameters;
- product options (``driver=False``) are read by datamig itself and never reach the driver.

To add an option, add one :class:`ConnectionOption` line to the engine's table below, e.g.
``ConnectionOption("zero_dates", "what to do with MariaDB zero dates", driver=False,
choices=("null",))``. Mark ``secret=True`` for values that must be encrypted at rest and
masked in answers, and ``target=True`` for options that change where (or how safely) a
stored password travels: changing those needs the password again.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from shared.jobspec import Engine

MAX_VALUE_LENGTH = 1000
_SECRET_NAME_RE = re.compile(r"pass|pwd|secret|token|key|credential", re.I)
_INT_RE = re.compile(r"\d{1,7}")


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


_BOOL_CHOICES = ("true", "false", "1", "0")


@dataclass(frozen=True)
class ConnectionOption:
    """One allowed option: its name, what it does, and how its value is checked."""

    name: str
    description: str
    driver: bool = True  # passed to the driver; False: read by datamig only
    secret: bool = False  # encrypted at rest, "***" in answers and logs
    target: bool = False  # part of where a stored password may be sent
    choices: tuple[str, ...] = ()  # allowed values (empty: free text)
    integer: bool = False
    to_driver: Callable[[str], Any] | None = field(default=None, compare=False)  # typed value for the driver

    def problem(self, value: str) -> str | None:
        """Why ``value`` is refused, or None."""
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if self.integer and not _INT_RE.fullmatch(value):
            return "must be a whole number (seconds)"
        return None


def _table(*options: ConnectionOption) -> dict[str, ConnectionOption]:
    return {o.name: o for o in options}


_Opt = ConnectionOption
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

POSTGRESQL_OPTIONS = _table(
    _Opt("sslmode", "TLS: disable … verify-full", choices=_SSL_MODES, target=True),
    _Opt("sslrootcert", "TLS: CA certificate file (or 'system')", target=True),
    _Opt("sslcert", "TLS: client certificate file"),
    _Opt("sslkey", "TLS: client key file", secret=True),
    _Opt("sslpassword", "TLS: passphrase of the client key", secret=True),
    _Opt("sslcrl", "TLS: certificate revocation list file", target=True),
    _Opt("sslcrldir", "TLS: certificate revocation list folder", target=True),
    _Opt("sslsni", "TLS: send the server name (1/0)", choices=("0", "1")),
    _Opt("ssl_min_protocol_version", "TLS: lowest protocol version", choices=_TLS_VERSIONS, target=True),
    _Opt("ssl_max_protocol_version", "TLS: highest protocol version", choices=_TLS_VERSIONS),
    _Opt("channel_binding", "SCRAM channel binding", choices=("disable", "prefer", "require"), target=True),
    _Opt("require_auth", "authentication methods the client accepts (e.g. scram-sha-256)", target=True),
    _Opt("gssencmode", "GSSAPI encryption", choices=("disable", "prefer", "require"), target=True),
    _Opt("target_session_attrs", "which server of a list to use",
         choices=("any", "read-write", "read-only", "primary", "standby", "prefer-standby")),
    _Opt("connect_timeout", "seconds to wait for a connection", integer=True),
    _Opt("keepalives", "TCP keepalives (1/0)", choices=("0", "1")),
    _Opt("keepalives_idle", "seconds before a TCP keepalive", integer=True),
    _Opt("keepalives_interval", "seconds between TCP keepalives", integer=True),
    _Opt("keepalives_count", "TCP keepalives lost before the connection is dead", integer=True),
    _Opt("tcp_user_timeout", "milliseconds unacknowledged data may stay in flight", integer=True),
    _Opt("application_name", "name shown in pg_stat_activity (default datamig)"),
)

MYSQL_OPTIONS = _table(  # TLS options go to PyMySQL as typed keywords (it reads "false" as true)
    _Opt("ssl_ca", "TLS: CA certificate file", target=True, to_driver=str),
    _Opt("ssl_cert", "TLS: client certificate file", to_driver=str),
    _Opt("ssl_key", "TLS: client key file", secret=True, to_driver=str),
    _Opt("ssl_key_password", "TLS: passphrase of the client key", secret=True, to_driver=str),
    _Opt("ssl_verify_cert", "TLS: check the server certificate", choices=_BOOL_CHOICES, target=True,
         to_driver=_bool),
    _Opt("ssl_verify_identity", "TLS: check certificate and server name", choices=_BOOL_CHOICES, target=True,
         to_driver=_bool),
    _Opt("ssl_disabled", "TLS: never use TLS", choices=_BOOL_CHOICES, target=True, to_driver=_bool),
    _Opt("connect_timeout", "seconds to wait for a connection (default 10)", integer=True, to_driver=int),
    _Opt("read_timeout", "seconds to wait for a read", integer=True, to_driver=int),
    _Opt("write_timeout", "seconds to wait for a write", integer=True, to_driver=int),
    _Opt("charset", "connection character set (datamig reads and writes utf8mb4)", choices=("utf8mb4",)),
    _Opt("program_name", "name shown in performance_schema.session_connect_attrs"),
)

MSSQL_OPTIONS = _table(
    _Opt("driver", "ODBC driver name", choices=("ODBC Driver 17 for SQL Server", "ODBC Driver 18 for SQL Server")),
    _Opt("Encrypt", "TLS: yes/no/strict/mandatory/optional", target=True,
         choices=("yes", "no", "strict", "mandatory", "optional")),
    _Opt("TrustServerCertificate", "TLS: accept any server certificate", choices=("yes", "no"), target=True),
    _Opt("HostNameInCertificate", "TLS: name expected in the server certificate", target=True),
    _Opt("ServerCertificate", "TLS: expected server certificate file", target=True),
    _Opt("ApplicationIntent", "ReadOnly routes to a readable secondary", choices=("ReadOnly", "ReadWrite")),
    _Opt("MultiSubnetFailover", "faster failover on availability groups", choices=("yes", "no")),
    _Opt("APP", "application name"),
    _Opt("ConnectRetryCount", "reconnection attempts", integer=True),
    _Opt("ConnectRetryInterval", "seconds between reconnection attempts", integer=True),
)

SQLITE_OPTIONS = _table(
    _Opt("timeout", "seconds to wait for a lock (default 30)", integer=True, to_driver=int),
)

# product options (read by datamig, never sent to the driver); their owners check the values
POSTGRESQL_OPTIONS |= _table(
    _Opt("read_role", "role the source steps run as (SET ROLE before the read-only transaction)", driver=False),
)
for _engine_options in (POSTGRESQL_OPTIONS, MYSQL_OPTIONS, MSSQL_OPTIONS, SQLITE_OPTIONS):
    _engine_options |= _table(_Opt("zero_dates", "what MariaDB zero dates become (null: NULL, counted as a warning)",
                                   driver=False))

CONNECTION_OPTIONS: dict[Engine, dict[str, ConnectionOption]] = {
    Engine.postgresql: POSTGRESQL_OPTIONS,
    Engine.mysql: MYSQL_OPTIONS,
    Engine.mssql: MSSQL_OPTIONS,
    Engine.sqlite: SQLITE_OPTIONS,
}

_INSTEAD = {
    "user": "use the username field", "username": "use the username field",
    "host": "use the host field", "hostaddr": "use the host field", "port": "use the port field",
    "dbname": "use the database field", "database": "use the database field", "db": "use the database field",
    "init_command": "session settings are set by datamig itself (the extractor reads times in UTC)",
    "options": "set server parameters on the role instead (ALTER ROLE … SET name = value)",
}


def option_for(engine: Engine, name: str) -> ConnectionOption | None:
    table = CONNECTION_OPTIONS.get(engine, {})
    return table.get(name)


def is_secret_option(engine: Engine | None, name: str) -> bool:
    """Secret-bearing: declared so, or named like a password, key, token or secret."""
    known = option_for(engine, name) if engine else None
    return bool(known and known.secret) or bool(_SECRET_NAME_RE.search(name))


def option_problems(engine: Engine, options: dict[str, Any]) -> list[str]:
    """One message per refused option (never quoting a value: it may be a secret)."""
    problems, unknown = [], False
    table = CONNECTION_OPTIONS.get(engine, {})
    for name, value in options.items():
        option = table.get(name)
        if option is None:
            hint = _INSTEAD.get(name.lower())
            problems.append(f"{name!r} is not an allowed {engine.value} option" + (f" ({hint})" if hint else ""))
            unknown = True
        elif not isinstance(value, str):
            problems.append(f"{name!r} must be given once, as text")
        elif len(value) > MAX_VALUE_LENGTH or any(c in value for c in "\x00\r\n;{}"):
            problems.append(f"{name!r} must be at most {MAX_VALUE_LENGTH} characters without ; {{ }} or line breaks")
        elif problem := option.problem(value):
            problems.append(f"{name!r} {problem}")
    if unknown:
        problems.append(f"allowed {engine.value} options: {', '.join(sorted(table)) or 'none'}")
    return problems


def driver_options(engine: Engine, options: dict[str, str]) -> dict[str, str]:
    """The options the driver gets (allowed driver options only, product options left out)."""
    table = CONNECTION_OPTIONS.get(engine, {})
    return {k: v for k, v in options.items() if k in table and table[k].driver}


def typed_driver_args(engine: Engine, query: dict[str, Any]) -> dict[str, Any]:
    """Typed values for the options whose driver would misread text (pymysql: "false" is true)."""
    table = CONNECTION_OPTIONS.get(engine, {})
    return {k: table[k].to_driver(v) for k, v in query.items()
            if k in table and table[k].to_driver is not None and isinstance(v, str)}


def target_options(engine: Engine, options: dict[str, str]) -> dict[str, str]:
    """The options that decide where (and how safely) a stored password travels. Options no
    longer allowed (saved before the allow-list) are not used, so they are not counted."""
    table = CONNECTION_OPTIONS.get(engine, {})
    return {k: v for k, v in options.items() if k in table and table[k].target}
