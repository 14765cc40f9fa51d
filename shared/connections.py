"""Projects (named database connections): their shape, URLs, masking and engines.

A project is given either as a SQLAlchemy-style ``url`` or as ``host``/``port``/
``database``/``username``/``password``. Passwords are write-only: :func:`masked_url`
is the only form that leaves the process in responses, logs and history.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from sqlalchemy.engine import URL, make_url

from shared.dialects import engine_key, get_dialect
from shared.dialects.options import driver_options, option_problems, typed_driver_args
from shared.jobspec import Engine, NoNulModel, NonEmptyName
from shared.privileges import READ_ROLE_OPTION, remember_read_role, split_read_role

MASK = "***"
ZERO_DATES_OPTION = "zero_dates"  # a product option (shared.dialects.options): read by the extractor, never sent to the driver
# bounded repeats: these run on every log line, and unbounded ones are quadratic on long words
_URL_PASSWORD_RE = re.compile(
    r"(?P<pre>\b[a-z][a-z0-9+.-]{0,30}+://[^:/@\s]{0,256}+:)(?P<pw>[^@\s]{0,1000}+)(?P<post>@)", re.I)
# key=value / key: value pairs whose key names a secret (DSNs, URL queries, dict reprs)
_KEY_VALUE_SECRET_RE = re.compile(
    r"(?P<pre>(?:password|passwd|pwd|secret|token)[\w.-]{0,40}+['\"]?\s{0,5}+[=:]\s{0,5}+)"
    r"(?P<val>'[^']*+'|\"[^\"]*+\"|[^\s&;,'\"})\]]++)", re.I)
URL_PASSWORD_KEYS = ("password", "passwd")  # in a URL query or the options: the project's password


def engine_of_url(url: str | URL) -> Engine:
    """The engine a SQLAlchemy URL names (``postgresql+psycopg2://`` → postgresql)."""
    backend = (url if isinstance(url, URL) else make_url(url)).get_backend_name()
    try:
        return Engine(engine_key(backend) or backend)
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
    options: dict[str, str] = Field(default_factory=dict, description=(
        "Allowed connection options per engine (e.g. sslmode, connect_timeout); others are refused. "
        "Secret-bearing ones are stored encrypted and shown as ***"))

    @field_validator("url")
    @classmethod
    def _url_query_allowed(cls, url: str | None) -> str | None:
        if not url:
            return url
        try:
            parsed = make_url(url)
            engine = engine_of_url(parsed)
        except Exception:  # noqa: BLE001 - the model validator reports a bad URL
            return url
        query = {k: v for k, v in parsed.query.items() if k not in URL_PASSWORD_KEYS}
        problems = option_problems(engine, query)
        if problems:
            raise ValueError("; ".join(problems))
        return url

    @field_validator("options")
    @classmethod
    def _options_allowed(cls, options: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        engine = info.data.get("engine")
        if engine is None and info.data.get("url"):
            try:
                engine = engine_of_url(info.data["url"])
            except Exception:  # noqa: BLE001 - reported by the model validator
                return options
        if engine is not None:
            problems = option_problems(engine, {k: v for k, v in options.items() if k not in URL_PASSWORD_KEYS})
            if problems:
                raise ValueError("; ".join(problems))
        return options

    @model_validator(mode="after")
    def _own_options(self) -> "ProjectSpec":
        value = self.options.get(ZERO_DATES_OPTION)
        if value is not None and value not in ("keep", "null"):
            raise ValueError(f"options.{ZERO_DATES_OPTION} must be 'keep' or 'null', not {value!r}")
        return self

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
            if get_dialect(self.engine).file_database:
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
    return url.set(drivername=get_dialect(engine_of_url(url.render_as_string(hide_password=False))).driver)


def build_url(spec: ProjectSpec | dict[str, Any]) -> URL:
    """The SQLAlchemy URL of a project, with the password in it (never log this)."""
    if isinstance(spec, dict):
        spec = ProjectSpec.model_validate(spec)
    if spec.url:
        url = with_default_driver(make_url(spec.url))
        if not url.password and spec_password(spec):
            url = url.set(password=spec_password(spec))
        if spec.username and not url.username:
            url = url.set(username=spec.username)
    else:
        assert spec.engine is not None
        url = URL.create(
            get_dialect(spec.engine).driver,
            username=spec.username,
            password=spec_password(spec) or None,
            host=spec.host,
            port=spec.port or get_dialect(spec.engine).default_port,
            database=spec.database,
        )
    options = {**url.query, **spec.options}
    query = driver_options(spec.engine or engine_of_url(url), options)
    if options.get(READ_ROLE_OPTION):  # a product option that rides in the URL to create_db_engine, which takes it out
        query[READ_ROLE_OPTION] = options[READ_ROLE_OPTION]
    return get_dialect(url.get_backend_name()).complete_url(url.set(query=query))


def masked_url(url: str | URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - fall back to a regex for malformed input
        return mask_secrets_in_text(url)


def query_password(url: URL) -> str | None:
    """A password given in the URL's query (``?password=``), which drivers would use."""
    for key in URL_PASSWORD_KEYS:
        value = url.query.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def spec_password(spec: ProjectSpec) -> str | None:
    """The password a spec gives: the field, else the URL's ``user:password@``, else its
    ``?password=``, else ``options.password`` (drivers would use those two as the password)."""
    if spec.password is not None:
        return spec.password
    if spec.url:
        url = make_url(spec.url)
        if url.password or query_password(url):
            return url.password or query_password(url)
    for key in URL_PASSWORD_KEYS:
        if spec.options.get(key):
            return spec.options[key]
    return None


def mask_secrets_in_text(text: str) -> str:
    """Replace ``scheme://user:password@`` and ``password=…``-shaped pairs in free text."""
    text = _URL_PASSWORD_RE.sub(lambda m: f"{m['pre']}{MASK}{m['post']}", text)
    return _KEY_VALUE_SECRET_RE.sub(lambda m: f"{m['pre']}{MASK}", text)


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



def create_db_engine(url: URL | str, *, sqlite_mode: str | None = None, **kwargs: Any) -> sa.Engine:
    """An engine with the settings every service wants (pre-ping, UTF-8, local infile).

    ``sqlite_mode``: open a SQLite file read-only (``"ro"``, sources and checks) or read-write
    without creating it (``"rw"``, destinations); a missing file is then an error, never a new file.
    """
    url = make_url(url) if isinstance(url, str) else url
    url, read_role = split_read_role(url)  # our option, not the driver's (shared/privileges.py)
    dialect = get_dialect(url.get_backend_name()) if engine_key(url.get_backend_name()) else None
    if dialect is not None and sqlite_mode:
        url = dialect.with_open_mode(url, sqlite_mode)
    defaults: dict[str, Any] = dict(dialect.connect_defaults) if dialect is not None else {}
    typed: dict[str, Any] = {}
    try:
        typed = typed_driver_args(engine_of_url(url), dict(url.query))
    except ValueError:
        pass  # an engine we have no option table for: the URL goes as it is
    url = url.difference_update_query(typed)
    # project options (the URL query) win over our defaults; the caller's connect_args win over both
    connect_args = {**{k: v for k, v in defaults.items() if k not in url.query}, **typed,
                    **kwargs.pop("connect_args", {})}
    kwargs.setdefault("pool_pre_ping", True)
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    remember_read_role(engine, read_role)
    return engine


def project_zero_dates(spec: ProjectSpec) -> str | None:
    """The project's ``zero_dates`` option ("keep" or "null"), if set."""
    return spec.options.get(ZERO_DATES_OPTION)
