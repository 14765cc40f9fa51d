"""What a source role can do is asked of the database; strict mode refuses a risky one (issue 13 item 3).

Each attack from the issue runs against a superuser/root source (refused by
DM_STRICT_SOURCES=true, warned about otherwise) and against a login role that may only
read, where the database itself refuses it. Roles are created per test and dropped after.
"""
from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.connections import create_db_engine
from shared.errors import SourceError
from shared.extract import Extraction, preview, validate_sources
from shared.jobspec import StepSpec
from shared.privileges import SourcePrivileged
from tests.conftest import unique_name

pytestmark = pytest.mark.integration

PG_ATTACKS = {
    "terminate": "SELECT pg_terminate_backend({pid}) AS x",
    "reload_conf": "SELECT pg_reload_conf() AS x",
    "lo_export": "SELECT lo_export({oid}, '{file}') AS x",
    "read_file": "SELECT pg_read_file('/etc/hostname') AS x",
    "dblink_exec": "SELECT dblink_exec('host=127.0.0.1 dbname={db} user=postgres', 'INSERT INTO t VALUES (7)') AS x",
}


class PgWorld:
    """A database with table t (1, 2), a large object, dblink when available, a victim session and a reader role."""

    def __init__(self, url: str, tmp_path) -> None:
        self.url, self.file = url, tmp_path / "exported"
        self.role = unique_name("dm_reader")
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.exec_driver_sql("CREATE TABLE t (id int)")
            c.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
            self.oid = c.exec_driver_sql("SELECT lo_from_bytea(0, 'secret'::bytea)").scalar_one()
            self.dblink = bool(c.exec_driver_sql(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'dblink'").scalar_one())
            if self.dblink:
                c.exec_driver_sql("CREATE EXTENSION dblink")
            c.exec_driver_sql(f'CREATE ROLE "{self.role}" LOGIN')
            c.exec_driver_sql(f'GRANT SELECT ON t TO "{self.role}"')
        u = make_url(url)
        self.victim = psycopg2.connect(host=u.host, port=u.port, user=u.username, dbname=u.database)
        self.victim.autocommit = True
        self.victim_pid = self.victim.get_backend_pid()
        self.db = u.database
        self.reader_url = u.set(username=self.role).render_as_string(hide_password=False)

    def assert_untouched(self) -> None:
        with self.admin.connect() as c:
            assert sorted(r[0] for r in c.exec_driver_sql("SELECT id FROM t")) == [1, 2]
        assert not self.file.exists()
        with self.victim.cursor() as cur:  # the other session is alive
            cur.execute("SELECT 1")

    def close(self) -> None:
        try:
            self.victim.close()
        except psycopg2.Error:
            pass
        with self.admin.connect() as c:
            c.exec_driver_sql(f'DROP OWNED BY "{self.role}"')
            c.exec_driver_sql(f'DROP ROLE "{self.role}"')
        self.admin.dispose()


@pytest.fixture
def pgw(pg_url, tmp_path) -> Iterator[PgWorld]:
    world = PgWorld(pg_url, tmp_path)
    yield world
    world.close()


@pytest.fixture
def strict(monkeypatch) -> None:
    monkeypatch.setenv("DM_STRICT_SOURCES", "true")


def run_step(url: str, sql: str) -> tuple[list[tuple], Extraction]:
    engine = create_db_engine(url, poolclass=sa.pool.NullPool)
    ext = Extraction([StepSpec(name="attack", project_id=1, sql=sql)], {1: engine})
    try:
        ext.open()
        return [r for b in ext.batches() for r in b], ext
    finally:
        ext.close()
        engine.dispose()


def attacks(world: PgWorld) -> dict[str, str]:
    return {name: PG_ATTACKS[name].format(pid=world.victim_pid, oid=world.oid, file=world.file, db=world.db)
            for name in PG_ATTACKS if name != "dblink_exec" or world.dblink}


def test_strict_mode_refuses_a_superuser_source_before_each_attack_runs(pgw, strict) -> None:
    assert len(attacks(pgw)) >= 4
    for name, sql in attacks(pgw).items():
        with pytest.raises(SourcePrivileged) as err:
            run_step(pgw.url, sql)
        message = str(err.value)
        assert "step 1 'attack'" in message and "superuser" in message and "DM_STRICT_SOURCES=true" in message, name
        pgw.assert_untouched()


def test_a_read_only_login_role_is_refused_by_the_database_for_each_attack(pgw, strict) -> None:
    engine = create_db_engine(pgw.reader_url, poolclass=sa.pool.NullPool)
    try:
        for name, sql in attacks(pgw).items():
            ext = Extraction([StepSpec(name="attack", project_id=1, sql=sql)], {1: engine})
            with pytest.raises(SourceError, match="step 1 'attack'") as err:
                ext.open()
            ext.close()
            assert not isinstance(err.value, SourcePrivileged), name  # the database said no, not our check
            assert [p.to_dict() for p in ext.privileges] == [
                {"read_only": True, "checked": True, "role": pgw.role, "risky": []}]
            pgw.assert_untouched()
    finally:
        engine.dispose()


def test_without_strict_mode_a_superuser_source_is_warned_about_on_preview_and_validation(pgw) -> None:
    engine = create_db_engine(pgw.url, poolclass=sa.pool.NullPool)
    steps = [StepSpec(name="reader", project_id=1, sql="SELECT id FROM t ORDER BY id")]
    try:
        [entry] = preview(steps, {1: engine})
        checks, _ = validate_sources(steps, {1: engine})
    finally:
        engine.dispose()
    assert entry["error"] is None and entry["rows"] == [[1], [2]]
    assert len(entry["warnings"]) == 1 and "superuser" in entry["warnings"][0]
    assert entry["warnings"][0].startswith("warning: project 1 (postgresql): the source role 'postgres'")
    [check] = [c for c in checks if c["check"].startswith("source role privileges")]
    assert check["ok"] and "superuser" in check["message"] and "pg_write_server_files" not in check["message"]


def test_read_role_switches_the_session_to_a_read_only_role_but_the_login_still_counts(pgw, monkeypatch) -> None:
    url = make_url(pgw.url).update_query_dict({"read_role": pgw.role}).render_as_string(hide_password=False)
    rows, ext = run_step(url, "SELECT current_user::text AS u")
    assert rows == [(pgw.role,)]
    [found] = ext.privileges
    assert found.role == pgw.role and found.risky  # the login (postgres) can switch back: still risky
    assert all("login role postgres" in r for r in found.risky) and "superuser (login role postgres" in found.risky[0]
    with pytest.raises(SourceError, match="permission denied for function pg_read_file"):
        run_step(url, attacks(pgw)["read_file"])
    monkeypatch.setenv("DM_STRICT_SOURCES", "true")
    with pytest.raises(SourcePrivileged, match="superuser \\(login role postgres"):
        run_step(url, "SELECT 1 AS x")
    pgw.assert_untouched()


# -- MariaDB ------------------------------------------------------------------------------------------

class MyWorld:
    def __init__(self, url: str) -> None:
        self.url, self.user = url, unique_name("dm_reader")
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        db = make_url(url).database
        with self.admin.connect() as c:
            c.exec_driver_sql("CREATE TABLE t (id int)")
            c.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
            c.exec_driver_sql("CREATE PROCEDURE dm_writer(x int) MODIFIES SQL DATA "
                              "BEGIN COMMIT; START TRANSACTION READ WRITE; INSERT INTO t VALUES (99); COMMIT; END")
            c.exec_driver_sql(f"CREATE USER '{self.user}'@'%%'")
            c.exec_driver_sql(f"GRANT SELECT ON `{db}`.* TO '{self.user}'@'%%'")
        self.reader_url = make_url(url).set(username=self.user).render_as_string(hide_password=False)

    def rows(self) -> list[int]:
        with self.admin.connect() as c:
            return sorted(r[0] for r in c.exec_driver_sql("SELECT id FROM t"))

    def close(self) -> None:
        with self.admin.connect() as c:
            c.exec_driver_sql(f"DROP USER '{self.user}'@'%%'")
        self.admin.dispose()


@pytest.fixture
def myw(mysql_url) -> Iterator[MyWorld]:
    world = MyWorld(mysql_url)
    yield world
    world.close()


def test_mariadb_root_is_refused_in_strict_mode_naming_file_and_super(myw, strict) -> None:
    with pytest.raises(SourcePrivileged) as err:
        run_step(myw.url, "SELECT LOAD_FILE('/etc/hostname') AS x")
    assert "step 1 'attack'" in str(err.value) and ": SUPER, FILE," in str(err.value)


def test_mariadb_root_without_strict_mode_is_warned_about(myw) -> None:
    rows, ext = run_step(myw.url, "SELECT id FROM t ORDER BY id")
    assert rows == [(1,), (2,)]
    [found] = ext.privileges
    assert not found.read_only and found.risky[:2] == ["SUPER", "FILE"] and "ALL PRIVILEGES on *.*" in found.risky


def test_a_mariadb_read_only_user_is_refused_by_the_database(myw, strict, monkeypatch, tmp_path) -> None:
    rows, ext = run_step(myw.reader_url, "SELECT LOAD_FILE('/etc/hostname') AS x")
    assert rows == [(None,)]  # no FILE privilege: the server returns NULL
    assert [p.read_only for p in ext.privileges] == [True]
    import shared.extract.runner as runner
    monkeypatch.setattr(runner, "first_word", lambda sql, flavor="generic": "select")  # a fooled tokenizer
    monkeypatch.setattr(runner, "into_target", lambda sql, flavor="generic": None)
    with pytest.raises(SourceError, match="(?i)execute command denied"):
        run_step(myw.reader_url, "/*!CALL dm_writer((*/ SELECT 1 /*!)*/)")
    with pytest.raises(SourceError, match="(?i)access denied"):
        run_step(myw.reader_url, f"SELECT id FROM t INTO OUTFILE '/tmp/dm_{tmp_path.name}'")
    assert myw.rows() == [1, 2]


def test_execute_granted_on_a_superuser_function_makes_a_role_risky(pgw, strict) -> None:
    with pgw.admin.connect() as c:
        c.exec_driver_sql(f'GRANT EXECUTE ON FUNCTION pg_read_file(text) TO "{pgw.role}"')
    with pytest.raises(SourcePrivileged, match=r"EXECUTE on pg_read_file\(\)"):
        run_step(pgw.reader_url, attacks(pgw)["read_file"])


def test_a_mariadb_default_role_of_the_user_counts(myw, strict) -> None:
    role = unique_name("dm_role")
    db = make_url(myw.url).database
    with myw.admin.connect() as c:
        c.exec_driver_sql(f"CREATE ROLE {role}")
        c.exec_driver_sql(f"GRANT INSERT ON `{db}`.* TO {role}")
        c.exec_driver_sql(f"GRANT {role} TO '{myw.user}'@'%%'")
        c.exec_driver_sql(f"SET DEFAULT ROLE {role} FOR '{myw.user}'@'%%'")
    try:
        with pytest.raises(SourcePrivileged, match=f"INSERT on {db}"):
            run_step(myw.reader_url, "SELECT id FROM t")
    finally:
        with myw.admin.connect() as c:
            c.exec_driver_sql(f"DROP ROLE {role}")
