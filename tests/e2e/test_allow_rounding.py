"""``allow_rounding`` through the running stack: a value the destination would round fails its row
unless the job allows rounding (issue #12 item 7)."""
from __future__ import annotations

import pytest

from tests.conftest import MYSQL_URL, PG_URL, require_service, unique_name
from tests.e2e.harness import Client, Databases, connect, query, running_stack

pytestmark = pytest.mark.e2e


def test_rounding_fails_the_row_unless_the_job_allows_it(tmp_path) -> None:
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    dbs = Databases()
    try:
        src, dst = dbs.pg(), dbs.mysql()
        with connect(src) as conn:
            conn.exec_driver_sql("CREATE TABLE src (id int PRIMARY KEY, n numeric)")
            conn.exec_driver_sql("INSERT INTO src VALUES (1, 0.1234567890123456789012345678901234567890), "
                                 "(2, 1e-40), (3, 1.5)")
        with connect(dst) as conn:
            conn.exec_driver_sql("CREATE TABLE strict_dst (id int PRIMARY KEY, n DECIMAL(65,30))")
            conn.exec_driver_sql("CREATE TABLE lenient_dst (id int PRIMARY KEY, n DECIMAL(65,30))")
        with running_stack(tmp_path / "stack", dbs.pg(), unique_name("dmround")) as stack:
            client = Client(stack)
            source, dest = client.project("pg", src), client.project("maria", dst)

            def job(name: str, table: str, **options: object) -> int:
                return client.create_job({"name": name, "max_retries": 0, **options,
                                          "steps": [{"name": "s", "project_id": source, "sql": "SELECT * FROM src"}],
                                          "destination": {"project_id": dest, "table": table, "mode": "upsert"}})
            strict = client.run(job("strict", "strict_dst"))
            lenient_id = job("lenient", "lenient_dst", allow_rounding=True)
            assert client.http.get(f"/api/jobs/{lenient_id}").json()["destination"]["allow_rounding"] is True
            lenient = client.run(lenient_id)
            errors = client.errors(strict["id"])
            client.close()
        assert strict["status"] == "partial_success" and strict["rows_failed"] == 2, strict
        messages = [r["error"] for r in errors["failed_rows"]]
        assert "column n" in messages[0] and "0.1234567890123456789012345678901234567890" in messages[0]
        assert "allow_rounding" in messages[0]
        assert lenient["status"] == "completed" and lenient["rows_inserted"] == 3, lenient
        assert [r[0] for r in query(dst, "SELECT id FROM strict_dst ORDER BY id")] == [3]
        assert [str(r[0]) for r in query(dst, "SELECT n FROM lenient_dst ORDER BY id")] == [
            "0.123456789012345678901234567890", "0E-30", "1.500000000000000000000000000000"]
    finally:
        dbs.drop_all()
