"""`datamig token …` works on an existing metadata store, names it, and never silently creates
one (run in the wrong directory it refuses; --create-store or DM_DATABASE_URL say otherwise)."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli import main


@pytest.fixture(autouse=True)
def _keep_root_logging() -> Iterator[None]:
    """``main`` configures the root logger for a process; give the test run its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without any datamig data, and no DM_ settings."""
    for name in ("DM_DATABASE_URL", "DM_DATA_DIR", "DM_SQLITE_ROOT", "DM_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("argv", [["token", "list"], ["token", "revoke", "ci"],
                                  ["token", "create", "--name", "ci", "--role", "editor"]])
def test_token_commands_outside_a_data_directory_refuse_to_create_a_store(elsewhere: Path, argv: list[str],
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    assert f"no metadata store at {elsewhere / 'data' / 'datamig.db'}" in err and "--create-store" in err
    assert not (elsewhere / "data").exists()


def test_create_store_creates_it_and_later_commands_name_the_store_they_use(
        elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = elsewhere / "data" / "datamig.db"
    code, out, err = _run(["token", "create", "--name", "ci", "--role", "editor", "--create-store"], capsys)
    assert code == 0 and out.startswith("dm_") and store.exists()
    assert f"metadata store sqlite:///{store}" in err
    code, out, err = _run(["token", "list"], capsys)
    assert code == 0 and " ci" in out and f"metadata store sqlite:///{store}" in err


def test_create_is_a_shorter_spelling_of_create_store(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = _run(["token", "list", "--create"], capsys)
    assert code == 0 and (elsewhere / "data" / "datamig.db").exists()


def test_an_explicit_database_url_is_used_as_given(elsewhere: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DM_DATABASE_URL", f"sqlite:///{elsewhere / 'meta.db'}")
    code, out, err = _run(["token", "list"], capsys)
    assert code == 0 and "meta.db" in err and not (elsewhere / "data").exists()
