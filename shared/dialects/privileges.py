"""What a source role can do beyond reading, asked of the database itself (PostgreSQL, MariaDB).

Each function takes a DB-API connection and returns ``(role, risky)``: the role the
session runs as and the privileges that let a step write, reach server files or signal
other sessions, named as the database names them. Nothing here writes.
"""
from __future__ import annotations

import re
from typing import Any

PG_RISKY_ROLES = ("pg_write_server_files", "pg_read_server_files", "pg_execute_server_program", "pg_signal_backend")

_PG_ROLE_SQL = """
SELECT r.rolname, r.rolsuper, r.rolcreaterole,
       (SELECT string_agg(g.rolname::text, ',' ORDER BY g.rolname) FROM pg_roles g
         WHERE g.rolname = ANY(%(groups)s) AND pg_has_role(r.oid, g.oid, 'MEMBER')),
       has_database_privilege(r.oid, current_database(), 'CREATE'),
       (SELECT quote_ident(n.nspname) FROM pg_namespace n
         WHERE n.nspname NOT IN ('information_schema') AND n.nspname !~ '^pg_'
           AND has_schema_privilege(r.oid, n.oid, 'CREATE') LIMIT 1),
       (SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'f', 'm') AND n.nspname NOT IN ('information_schema')
           AND n.nspname !~ '^pg_' AND has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
         LIMIT 1),
       (SELECT string_agg(DISTINCT p.proname::text, ',' ORDER BY p.proname::text) FROM pg_proc p
         WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname ~ %(functions)s
           AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
           AND NOT EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                            WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')),
       current_setting('lo_compat_privileges') = 'on'
  FROM pg_roles r WHERE r.rolname = %(role)s
"""
# Server functions that are superuser-only by default; EXECUTE granted on one makes a role risky.
PG_RISKY_FUNCTIONS = (r"^(lo_import|lo_export|pg_reload_conf|pg_rotate_logfile|pg_read_file|pg_read_binary_file"
                      r"|pg_ls_dir|pg_stat_file|pg_promote|pg_switch_wal|pg_backup_start|pg_backup_stop"
                      r"|pg_create_restore_point|pg_wal_replay_pause|pg_wal_replay_resume|pg_stat_reset.*"
                      r"|pg_replication_origin_.*|pg_log_backend_memory_contexts)$")


def pg_role_risks(dbapi_conn: Any, role: str) -> list[str]:
    """The risky privileges of PostgreSQL role ``role`` in the connected database.

    A superuser is asked only that (it implies everything else); other roles get the full
    query, which walks the database's tables and functions."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %(role)s", {"role": role})
        found = cur.fetchone()
        if found is not None and found[0]:
            return ["superuser"]
        cur.execute(_PG_ROLE_SQL, {"groups": list(PG_RISKY_ROLES), "role": role, "functions": PG_RISKY_FUNCTIONS})
        row = cur.fetchone()
    finally:
        cur.close()
    if row is None:
        return []
    _, superuser, createrole, groups, create_db, create_schema, write_table, functions, lo_compat = row
    if superuser:
        return ["superuser"]  # implies every other privilege
    risky = ["CREATEROLE"] if createrole else []
    risky += groups.split(",") if groups else []  # a list as text: source sessions read arrays as text
    risky += ["CREATE on the database"] if create_db else []
    risky += [f"CREATE on schema {create_schema}"] if create_schema else []
    risky += [f"INSERT/UPDATE/DELETE/TRUNCATE on {write_table}"] if write_table else []
    risky += [f"EXECUTE on {f}()" for f in functions.split(",")] if functions else []
    risky += ["lo_compat_privileges = on (any role may lo_export)"] if lo_compat else []
    return risky


def pg_source_risks(dbapi_conn: Any) -> tuple[str, list[str]]:
    """``current_user`` and its risks; when it differs from the login role (``SET ROLE``), the
    login's risks count too: a step can switch back with ``set_config('role', 'none', false)``."""
    cur = dbapi_conn.cursor()
    cur.execute("SELECT current_user::text, session_user::text")
    current, login = cur.fetchone()
    cur.close()
    risky = pg_role_risks(dbapi_conn, current)
    if login != current:
        risky += [f"{r} (login role {login}, which a step can switch back to)" for r in pg_role_risks(dbapi_conn, login)]
    return current, risky


MYSQL_RISKY = (  # in the order messages name them
    "SUPER", "FILE", "ALL PRIVILEGES", "INSERT", "UPDATE", "DELETE", "EXECUTE", "CONNECTION ADMIN", "CREATE", "DROP",
    "ALTER", "CREATE ROUTINE", "ALTER ROUTINE", "CREATE VIEW", "INDEX", "EVENT", "TRIGGER", "DELETE HISTORY",
    "SHUTDOWN", "RELOAD", "BINLOG ADMIN", "READ_ONLY ADMIN", "CREATE USER", "GRANT OPTION",
)

_GRANT_RE = re.compile(r"^GRANT (?P<privs>.+?) ON (?P<scope>.+?) TO .+?(?P<grant> WITH GRANT OPTION)?$", re.S)
_TOP_COMMA = re.compile(r",\s*(?![^()]*\))")


def mysql_source_risks(dbapi_conn: Any) -> tuple[str, list[str]]:
    """``CURRENT_USER()`` and its risky grants, read from ``SHOW GRANTS`` (which, unlike
    information_schema, also lists the grants of the roles enabled for the session), ``SUPER``
    and ``FILE`` first, each as ``PRIVILEGE on scope``."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute("SELECT CURRENT_USER()")
        current = str(cur.fetchone()[0])
        cur.execute("SHOW GRANTS")
        lines = [str(r[0]) for r in cur.fetchall()]
    finally:
        cur.close()
    found: dict[str, int] = {}
    for line in lines:
        m = _GRANT_RE.match(line.strip())
        if m is None:  # GRANT role TO user, SET DEFAULT ROLE …
            continue
        scope = m["scope"].replace("`", "")
        names = [re.sub(r"\s*\(.*\)$", "", p).strip().upper() for p in _TOP_COMMA.split(m["privs"])]
        if "ALL PRIVILEGES" in names and scope == "*.*":
            names += ["SUPER", "FILE"]
        names += ["GRANT OPTION"] if m["grant"] else []
        for name in names:
            if name in MYSQL_RISKY:
                label = name if scope == "*.*" and name in ("SUPER", "FILE") else f"{name} on {scope}"
                found.setdefault(label, MYSQL_RISKY.index(name))
    return current, sorted(found, key=lambda label: (found[label], label))
