"""Is a source role really read-only? What it can do, in words, and what strict mode refuses.

Source sessions run in read-only transactions, but a read-only transaction cannot stop a
role that may write files on the server, read them, run programs or signal other sessions
(a superuser, ``pg_write_server_files``, MariaDB ``FILE``/``SUPER``…), nor a MariaDB
procedure that commits. So every source session asks the database what its role can do
(:meth:`shared.dialects.base.Dialect.source_privileges`). With ``DM_STRICT_SOURCES=true``
a source whose role holds any such privilege is refused, naming the privilege; otherwise
it is a warning on the connection test, on preview and validation answers and in history.

``read_role`` (a project option, PostgreSQL) names a read-only role the session switches
to (``SET ROLE``) before anything runs. It is kept out of the driver's connection options
and remembered per engine here.
"""
from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from shared.errors import SourceError

READ_ROLE_OPTION = "read_role"
WARNING_KIND = "source_privileged"
_READ_ROLES: "weakref.WeakKeyDictionary[sa.Engine, str]" = weakref.WeakKeyDictionary()


def strict_sources_default() -> bool:
    """``DM_STRICT_SOURCES`` (false unless set to true/1/yes)."""
    return os.environ.get("DM_STRICT_SOURCES", "").strip().lower() in ("1", "true", "t", "yes", "y", "on")


def split_read_role(url: URL) -> tuple[URL, str | None]:
    """``url`` without the ``read_role`` query option, and that option (None when absent or empty)."""
    role = url.query.get(READ_ROLE_OPTION)
    if role is None:
        return url, None
    url = url.difference_update_query([READ_ROLE_OPTION])
    role = role[-1] if isinstance(role, tuple) else role
    return url, (role.strip() or None)


def remember_read_role(engine: sa.Engine, role: str | None) -> None:
    if role:
        _READ_ROLES[engine] = role


def read_role_of(engine: sa.Engine) -> str | None:
    """The ``read_role`` the engine's project configured, if any."""
    return _READ_ROLES.get(engine)


@dataclass
class SourcePrivileges:
    """What one source role can do beyond reading; ``risky`` empty means read-only."""

    project_id: int
    engine: str
    role: str
    risky: list[str] = field(default_factory=list)
    checked: bool = True  # False: the engine has no role privileges to ask about (SQLite) or the check failed

    @property
    def read_only(self) -> bool:
        return self.checked and not self.risky

    def to_dict(self) -> dict[str, Any]:
        """The API's ``privileges`` field."""
        return {"read_only": self.read_only, "checked": self.checked, "role": self.role, "risky": list(self.risky)}

    def message(self, *, strict: bool) -> str:
        what = ", ".join(self.risky[:8]) + (f" (and {len(self.risky) - 8} more)" if len(self.risky) > 8 else "")
        who = f"project {self.project_id}" if self.project_id else "this connection"
        head = (f"{who} ({self.engine}): the source role {self.role!r} can write, reach server "
                f"files or signal other sessions: {what}")
        if strict:
            return f"{head}; DM_STRICT_SOURCES=true refuses such a source: connect it with a read-only role"
        return (f"warning: {head}; a read-only transaction does not stop these (set DM_STRICT_SOURCES=true "
                "to refuse such sources)")


class SourcePrivileged(SourceError):
    """Strict mode refused a source whose role is not read-only (never retried)."""

    kind = "source_privileged"
    transient = False


def check_privileges(privileges: SourcePrivileges, *, strict: bool, where: str) -> None:
    """Raise :class:`SourcePrivileged` in strict mode for a risky role."""
    if strict and privileges.risky:
        raise SourcePrivileged(f"{where}: {privileges.message(strict=True)}")


def inspect_engine(engine: sa.Engine, *, project_id: int) -> SourcePrivileges:
    """Connect (switching to ``read_role`` when configured) and ask the database what the role can do."""
    from shared.dialects import get_dialect

    dialect = get_dialect(engine.dialect.name)
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        dialect.drop_privileges(conn, read_role_of(engine))
        return dialect.source_privileges(conn, project_id=project_id)
    finally:
        try:
            raw.rollback()
        finally:
            raw.invalidate()
