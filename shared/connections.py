"""Projects (named database connections): their shape, URLs, masking and engines.

A project is given either as a SQLAlchemy-style ``url`` or as ``host``/``port``/
``database``/``username``/``password``. Passwords are write-only: :func:`masked_url`
is the only form that leaves the process in responses, logs and history.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.engine import URL, make_url

from shared.jobspec import Engine, NoNulModel, NonEmptyName

DRIVERS = {
    Engine.postgresql: "postgresql+psycopg2",
    Engine.mysql: "mysql+pymysql",
    Engine.mssql: "mssql+pyodbc",
    Engine.sqlite: "sqlite",
}
DEFAULT_PORTS = {Engine.postgresql: 5432, Engine.mysql: 3306, Engine.mssql: 1433}
DEFAULT_MSSQL_ODBC_DRIVER = "ODBC Driver 18 for SQL Server"
MASK = "***"
_URL_PASSWORD_RE = re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<post>@)", re.I)


def engine_of_url(url: str) -> Engine:
    """The engine a SQLAlchemy URL names (``postgresql+psycopg2://`` → postgresql)."""
    backend = make_url(url).get_backend_name()
    aliases = {"postgres": "postgresql", "mariadb": "mysql"}
    try:
        return Engine(aliases.get(backend, backend))
    except ValueError:
        raise ValueError(f"unsupported database engine {backend!r}; use one of {[e.value for e in Engine]}") from None


class ProjectSpec(NoNulModel):
    """A project as users write it. Either ``url`` or ``host``/``database`` (not both)."""

    model_config = ConfigDict(extra="forbid")

    name: NonEmptyName
    engine: Engine | None = None
    url: str | None = Field(None, max_length=2000)
    host: str | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    database: str | None = Field(None, max_length=255)
    username: str | None = Field(None, max_length=255)
    password: str | None = Field(None, max_length=1000, json_schema_extra={"writeOnly": True})
    options: dict[str, str] = Field(default_factory=dict, description="Extra URL query options (e.g. sslmode)")

    @model_validator(mode="after")
    def _one_form(self) -> "ProjectSpec":
        if self.url:
            if self.host:
                raise ValueError("give either url or host/port/database, not both")
            try:
                url_engine = engine_of_url(self.url)
            except Exception as exc:  # noqa: BLE001 - sqlalchemy raises several kinds
                raise ValueError(f"url: {exc}") from None
            if self.engine and self.engine != url_engine:
                raise ValueError(f"engine {self.engine.value!r} does not match the url's {url_engine.value!r}")
            self.engine = url_engine
        else:
            if self.engine is None:
                raise ValueError("engine is required when no url is given")
            if self.engine == Engine.sqlite:
                if not self.database:
                    raise ValueError("database (the file path) is required for sqlite")
            elif not self.host or not self.database:
                raise ValueError("host and database are required when no url is given")
        return self


def with_default_driver(url: URL) -> URL:
    """``url`` with our driver when it names none (``postgresql://`` → ``postgresql+psycopg2://``,
    ``mysql://``/``mariadb://`` → ``mysql+pymysql://``): SQLAlchemy's own defaults (psycopg 3,
    mysqlclient) are not installed."""
    if "+" in url.drivername:
        return url
    return url.set(drivername=DRIVERS[engine_of_url(url.render_as_string(hide_password=False))])


def build_url(spec: ProjectSpec | dict[str, Any]) -> URL:
    """The SQLAlchemy URL of a project, with the password in it (never log this)."""
    if isinstance(spec, dict):
        spec = ProjectSpec.model_validate(spec)
    if spec.url:
        url = with_default_driver(make_url(spec.url))
        if spec.password and not url.password:
            url = url.set(password=spec.password)
        if spec.username and not url.username:
            url = url.set(username=spec.username)
    else:
        assert spec.engine is not None
        url = URL.create(
            DRIVERS[spec.engine],
            username=spec.username,
            password=spec.password,
            host=spec.host,
            port=spec.port or DEFAULT_PORTS.get(spec.engine),
            database=spec.database,
        )
    if spec.options:
        url = url.update_query_dict(spec.options)
    if url.get_backend_name() == "mssql" and "driver" not in url.query and "odbc_connect" not in url.query:
        url = url.update_query_dict({"driver": DEFAULT_MSSQL_ODBC_DRIVER})
    return url


def masked_url(url: str | URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - fall back to a regex for malformed input
        return mask_secrets_in_text(url)


def mask_secrets_in_text(text: str) -> str:
    """Replace anything shaped like ``scheme://user:password@`` in free text."""
    return _URL_PASSWORD_RE.sub(lambda m: f"{m['pre']}{MASK}{m['post']}", text)


_SQLITE_URI_OPTIONS = frozenset({"uri", "mode", "vfs", "immutable", "nolock", "cache"})


def sqlite_location_error(spec: ProjectSpec, *, root: Path) -> tuple[str, str] | None:
    """``(field, message)`` when a SQLite project's file does not lie under ``root`` (after
    resolving ``..`` and symbolic links) or names a URI/in-memory database; None otherwise."""
    if spec.engine != Engine.sqlite:
        return None
    field = "url" if spec.url else "database"
    if set(spec.options) & _SQLITE_URI_OPTIONS:
        field = "options"
    url = build_url(spec)
    path = url.database or ""
    if not path or path == ":memory:" or path.startswith("file:") or set(url.query) & _SQLITE_URI_OPTIONS:
        return field, f"a SQLite project is a file path under {root} (no in-memory database, URI or mode option)"
    if not Path(path).resolve().is_relative_to(root):
        return field, (f"the SQLite file {path!r} is outside {root}; SQLite projects must lie under "
                       "DM_SQLITE_ROOT (default: the data directory)")
    return None


def _sqlite_with_mode(url: URL, mode: str) -> URL:
    """The SQLite URL opened as a URI with ``mode`` (``ro``: read-only, ``rw``: no creating the file)."""
    path = url.database or ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return url
    return url.set(database="file:" + quote(str(Path(path).resolve())),
                   query={**url.query, "mode": mode, "uri": "true"})


def create_db_engine(url: URL | str, *, sqlite_mode: str | None = None, **kwargs: Any) -> sa.Engine:
    """An engine with the settings every service wants (pre-ping, UTF-8, local infile).

    ``sqlite_mode``: open a SQLite file read-only (``"ro"``, sources and checks) or read-write
    without creating it (``"rw"``, destinations); a missing file is then an error, never a new file.
    """
    url = make_url(url) if isinstance(url, str) else url
    backend = url.get_backend_name()
    if backend == "sqlite" and sqlite_mode:
        url = _sqlite_with_mode(url, sqlite_mode)
    connect_args: dict[str, Any] = kwargs.pop("connect_args", {})
    if backend in ("mysql", "mariadb"):
        connect_args.setdefault("charset", "utf8mb4")
        connect_args.setdefault("local_infile", True)
        connect_args.setdefault("connect_timeout", 10)
    elif backend == "postgresql":
        connect_args.setdefault("connect_timeout", 10)
        connect_args.setdefault("application_name", "datamig")
    elif backend == "sqlite":
        connect_args.setdefault("timeout", 30)
        connect_args.setdefault("check_same_thread", False)
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, connect_args=connect_args, **kwargs)
