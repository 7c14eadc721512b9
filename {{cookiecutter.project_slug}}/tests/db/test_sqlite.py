from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.db.sqlite_database import unreachable_database_url
from tests.test_cli import run_cli

pytestmark = pytest.mark.anyio


async def test_connections_enforce_foreign_keys_and_use_wal(app: FastAPI) -> None:
    async with app.state.database.engine.connect() as connection:
        foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
        journal_mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()

    assert foreign_keys == 1
    assert journal_mode == "wal"


def test_migrate_creates_the_database_file_then_is_a_no_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "new.db"
    url = f"sqlite+aiosqlite:///{path}"

    first = run_cli(monkeypatch, capsys, url, "migrate")
    second = run_cli(monkeypatch, capsys, url, "migrate")

    assert first == (
        0,
        f"Created the database file {path}.\nThe database is at the latest migration.\n",
    )
    assert second == (0, "The database is at the latest migration.\n")


def test_migrate_into_a_missing_directory_says_the_file_cannot_be_opened(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = unreachable_database_url()

    code, output = run_cli(monkeypatch, capsys, url, "migrate")

    assert code == 1
    assert output.startswith("error: cannot open the SQLite database file ")
    assert "its directory must exist and be writable" in output
    assert "Traceback" not in output
