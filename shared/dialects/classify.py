"""Transient or permanent: can a retry heal this error? Decided by codes, never by words.

Each engine answers from its own codes (``Dialect.classify`` dispatches here by engine):

- PostgreSQL: the SQLSTATE. Transient: classes 08 (connection), 53 (insufficient resources,
  e.g. too many connections), 58 (system/I/O error), and 40001 serialization failure, 40P01
  deadlock, 40003 completion unknown, 55P03 lock not available, 57014 statement timeout /
  cancel, 57P01–57P03 and 57P05 (shutdown, starting up, idle session timeout), 25P03 idle in
  transaction timeout. Class 53 holds disk full (53100) and out of memory (53200).
  Every other SQLSTATE (28P01 wrong password, 28000, 3D000 unknown
  database, 42xxx syntax / missing table / privilege, 22/23 data, …) is permanent.
  psycopg2 gives no SQLSTATE for a refused connection (libpq does not expose the server's
  code during start-up), so for those the server's start-up message is mapped back to its
  SQLSTATE by the server's own message templates (``_PG_STARTUP``); a driver error without a
  SQLSTATE that is none of them (refused, reset, timed out, server gone) is transient.
- MySQL/MariaDB: the error number (first argument of PyMySQL's errors). Transient: deadlock
  1213, lock wait 1205, record changed since read 1020 (snapshot isolation's serialization
  failure), resources as PostgreSQL's class 53 (disk full 1021, out of memory 1041, table
  full 1114), interrupted/killed 1317/1927, statement timeouts 1969/3024, too many
  connections 1040, shutdown 1053, network errors 1152/1158–1161, 4031, and the client's
  connection errors 2000–2999 (can't connect 2003, gone away 2006, lost 2013, …) except a
  few that are configuration (2059 auth plugin, 2026 SSL). Every other server error (1045
  access denied, 1044, 1049 unknown database, 1064 syntax, 1146 missing table, …) is permanent.
- SQLite: the primary result code (``sqlite_errorcode``): BUSY, LOCKED, INTERRUPT and FULL
  (disk full) are transient; every other code (CANTOPEN, READONLY, ERROR, CONSTRAINT, …) is
  permanent.
- SQL Server (pyodbc): the ODBC SQLSTATE: 08xxx (connection), 40001, HYT00/HYT01,
  HY008 and native deadlock/lock/network numbers are transient; 28000 (login failed) and the
  rest are permanent.

**The one rule for unknown errors** (:func:`classify_unknown`): an error that carries no
code its engine knows — and is not one of ours, which say so themselves — is *transient*:
a retry, bounded by the job's ``max_retries`` and backed off, may heal what we could not
classify, and a permanent error costs at most those retries.
"""
from __future__ import annotations

import re
from collections.abc import Callable

TRANSIENT = "transient"
PERMANENT = "permanent"

_PG_TRANSIENT_CLASSES = ("08", "53", "58")
_PG_TRANSIENT_CODES = frozenset({"40001", "40P01", "40003", "55P03", "57014", "57P01", "57P02", "57P03",
                                 "57P05", "25P03"})
# PostgreSQL's start-up refusals (server message templates, src/backend/libpq/auth.c and
# utils/init/postinit.c) → SQLSTATE; psycopg2 reports these without a pgcode.
_PG_STARTUP: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), code) for p, code in (
    (r'password authentication failed for user "', "28P01"),
    (r'(Ident|Peer|LDAP|RADIUS|PAM|GSSAPI|SSPI|certificate|BSD) authentication failed for user "', "28000"),
    (r'role ".*" does not exist', "28000"),
    (r'role ".*" is not permitted to log in', "28000"),
    (r"no pg_hba\.conf entry for ", "28000"),
    (r'pg_hba\.conf rejects connection for ', "28000"),
    (r'database ".*" does not exist', "3D000"),
    (r'permission denied for database "', "42501"),
    (r'database ".*" is not currently accepting connections', "55000"),
    (r"fe_sendauth: no password supplied", "28P01"),
    (r"server does not support SSL, but SSL was required", "08P01"),  # configuration: see below
    (r"sorry, too many clients already|remaining connection slots are reserved", "53300"),
    (r"the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)",
     "57P03"),
))
_PG_PERMANENT_STARTUP = frozenset({"08P01"})  # a protocol/TLS mismatch does not heal by itself

_MYSQL_TRANSIENT = frozenset({1020, 1021, 1040, 1041, 1053, 1114, 1152, 1158, 1159, 1160, 1161, 1205, 1213,
                              1317, 1927, 1969, 3024, 4031})
_MYSQL_CLIENT_PERMANENT = frozenset({2026, 2059})

_SQLITE_TRANSIENT = frozenset({5, 6, 9, 13})  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_INTERRUPT, SQLITE_FULL
# sqlite3_errstr() of those codes (fixed, not translated), for errors raised without sqlite_errorcode
_SQLITE_CODE_OF_TEXT = {"database is locked": 5, "database table is locked": 6, "interrupted": 9}

_MSSQL_TRANSIENT_STATES = frozenset({"40001", "HYT00", "HYT01", "08S01", "08001", "08003", "08007", "HY008"})
_MSSQL_TRANSIENT_NATIVE = re.compile(r"\((1205|1222|10053|10054|10060|3980|40197|40501|40613|49918)\)")


def _orig(exc: BaseException) -> BaseException:
    """The driver's exception inside SQLAlchemy's wrapper (or ``exc`` itself)."""
    return getattr(exc, "orig", None) or exc


def postgresql_sqlstate(err: BaseException) -> str | None:
    """The SQLSTATE of a psycopg2 error; for a refused connection, recovered from the start-up message."""
    code = getattr(err, "pgcode", None)
    if code:
        return str(code)
    if type(err).__name__ in ("OperationalError", "InterfaceError"):
        text = str(err)
        for pattern, startup_code in _PG_STARTUP:
            if pattern.search(text):
                return startup_code
    return None


def _codeless(err: BaseException, driver: str) -> str | None:
    """A driver error without a code: the connection failed outside the protocol (refused, reset,
    timed out: transient) or the driver refused our call (permanent); not the driver's: None."""
    if type(err).__module__.split(".", 1)[0] != driver:
        return None
    return TRANSIENT if type(err).__name__ in ("OperationalError", "InterfaceError") else PERMANENT


def classify_postgresql(err: BaseException) -> str | None:
    code = postgresql_sqlstate(err)
    if code is None:
        return _codeless(err, "psycopg2")
    if code in _PG_PERMANENT_STARTUP:
        return PERMANENT
    return TRANSIENT if code in _PG_TRANSIENT_CODES or code[:2] in _PG_TRANSIENT_CLASSES else PERMANENT


def classify_mysql(err: BaseException) -> str | None:
    args = getattr(err, "args", ())
    code = args[0] if args and isinstance(args[0], int) and not isinstance(args[0], bool) else None
    if code is None or code == 0:  # PyMySQL's "(0, '')" and InterfaceErrors: the connection is gone
        return _codeless(err, "pymysql")
    if 2000 <= code < 3000:
        return PERMANENT if code in _MYSQL_CLIENT_PERMANENT else TRANSIENT
    return TRANSIENT if code in _MYSQL_TRANSIENT else PERMANENT


def sqlite_result_code(exc: BaseException) -> int | None:
    """The primary result code of a sqlite3 error (wrapped or not); None when not sqlite3's."""
    err = _orig(exc)
    code = getattr(err, "sqlite_errorcode", None)
    if code is None:
        if type(err).__module__ != "sqlite3":
            return None
        code = _SQLITE_CODE_OF_TEXT.get(str(err).strip().lower(), 1)  # a module-level error: SQLITE_ERROR
    return code & 0xFF


def classify_sqlite(err: BaseException) -> str | None:
    code = sqlite_result_code(err)
    if code is None:
        return None
    return TRANSIENT if code in _SQLITE_TRANSIENT else PERMANENT


def classify_mssql(err: BaseException) -> str | None:
    args = getattr(err, "args", ())
    state = str(args[0]) if args else ""
    if not re.fullmatch(r"[0-9A-Z]{5}", state):
        return None
    message = str(args[1]) if len(args) > 1 else ""
    if state in _MSSQL_TRANSIENT_STATES or _MSSQL_TRANSIENT_NATIVE.search(message):
        return TRANSIENT
    if state.startswith("08"):
        return TRANSIENT
    return PERMANENT


BY_ENGINE: dict[str, Callable[[BaseException], str | None]] = {
    "postgresql": classify_postgresql, "mysql": classify_mysql, "sqlite": classify_sqlite, "mssql": classify_mssql,
}
_DRIVER_ENGINES = {"psycopg2": "postgresql", "pymysql": "mysql", "sqlite3": "sqlite", "pyodbc": "mssql"}


def classify_unknown(exc: BaseException) -> str:
    """The one rule for an error no code classifies (:data:`shared.errors.UNKNOWN_IS_TRANSIENT`):
    transient, retried at most ``max_retries`` times."""
    from shared.errors import UNKNOWN_IS_TRANSIENT

    return TRANSIENT if UNKNOWN_IS_TRANSIENT else PERMANENT


def classify_for(engine: str, exc: BaseException) -> str:
    """``exc`` (wrapped by SQLAlchemy or not) as ``engine``'s dialect sees it."""
    verdict = BY_ENGINE.get(engine, lambda _e: None)(_orig(exc))
    if verdict is None and getattr(exc, "connection_invalidated", False):
        return TRANSIENT
    return verdict or classify_unknown(exc)


def engine_of_error(exc: BaseException) -> str | None:
    """The engine whose driver raised ``exc`` (by the driver's module), or None."""
    module = type(_orig(exc)).__module__.split(".", 1)[0]
    return _DRIVER_ENGINES.get(module)


def classify_error(exc: BaseException) -> str:
    """Any exception: ours say whether they are transient; a driver's error goes to its engine's
    dialect; anything else follows :func:`classify_unknown`."""
    from shared.errors import DatamigError

    if isinstance(exc, DatamigError):
        return TRANSIENT if exc.transient else PERMANENT
    engine = engine_of_error(exc)
    return classify_for(engine, exc) if engine else classify_unknown(exc)
