"""MariaDB/MySQL ``SHOW GRANTS`` lines → the privileges that make a source role risky."""
from __future__ import annotations

from shared.dialects.privileges import mysql_source_risks


class _Cursor:
    def __init__(self, grants: list[str]) -> None:
        self.grants, self.rows = grants, []

    def execute(self, sql: str) -> None:
        self.rows = [("u@%",)] if "CURRENT_USER" in sql else [(g,) for g in self.grants]

    def fetchone(self):  # noqa: ANN201
        return self.rows[0]

    def fetchall(self):  # noqa: ANN201
        return self.rows

    def close(self) -> None:
        pass


class _Conn:
    def __init__(self, grants: list[str]) -> None:
        self.grants = grants

    def cursor(self) -> _Cursor:
        return _Cursor(self.grants)


def risks(*grants: str) -> list[str]:
    return mysql_source_risks(_Conn(list(grants)))[1]


def test_a_read_only_user_has_no_risks() -> None:
    assert risks("GRANT USAGE ON *.* TO `u`@`%`", "GRANT SELECT, SHOW VIEW ON `db`.* TO `u`@`%`",
                 "GRANT SELECT (`id`, `name`) ON `db`.`t` TO `u`@`%`", "GRANT `r` TO `u`@`%`",
                 "SET DEFAULT ROLE `r` FOR `u`@`%`") == []


def test_write_file_super_and_role_grants_are_named_in_order_of_danger() -> None:
    assert risks("GRANT SELECT, INSERT (`a`, `b`), UPDATE ON `db`.`t` TO `u`@`%`",
                 "GRANT FILE ON *.* TO `r`", "GRANT EXECUTE ON PROCEDURE `db`.`p` TO `u`@`%`",
                 "GRANT SELECT ON `db2`.* TO `u`@`%` WITH GRANT OPTION") == [
        "FILE", "INSERT on db.t", "UPDATE on db.t", "EXECUTE on PROCEDURE db.p", "GRANT OPTION on db2.*"]


def test_all_privileges_on_everything_include_super_and_file() -> None:
    assert risks("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
                 "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION")[:3] == [
        "SUPER", "FILE", "ALL PRIVILEGES on *.*"]
