"""DM_DATABASE_URL gets the same driver defaults as project URLs, and a driver that is not
installed is a one-line error naming it, not a traceback."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from services.cli import main
from shared.errors import ConfigError
from shared.store.db import migrate, open_store


@pytest.fixture(autouse=True)
def _keep_root_logging() -> Iterator[None]:
    """``main`` configures the root logger for a process; give the test run its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_a_plain_postgresql_url_opens_the_store_with_psycopg2(pg_database: Callable[[], str]) -> None:
    url = make_url(pg_database()).set(drivername="postgresql").render_as_string(hide_password=False)
    assert url.startswith("postgresql://")
    engine = open_store(url)
    try:
        assert engine.url.drivername == "postgresql+psycopg2"
        migrate(engine)
        with engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM dm_jobs")) == 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("url, driver", [("mysql://root@127.0.0.1/x", "mysql+pymysql"),
                                         ("mariadb://root@127.0.0.1/x", "mysql+pymysql"),
                                         ("postgres://u@h/db", "postgresql+psycopg2")])
def test_urls_without_a_driver_get_ours(url: str, driver: str) -> None:
    assert open_store(url).url.drivername == driver


def test_a_driver_that_is_not_installed_is_named_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="'postgresql\\+asyncpg'.*'asyncpg' is not installed"):
        open_store("postgresql+asyncpg://u:secret@127.0.0.1/db")
    monkeypatch.setenv("DM_DATABASE_URL", "postgresql+asyncpg://u:secret@127.0.0.1:5432/db")
    monkeypatch.setenv("DM_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as done:
        main(["serve", "api"])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert "asyncpg" in err and "Traceback" not in err and "secret" not in err
    assert len(err.strip().splitlines()) == 1, err
