import pytest
from fastapi import FastAPI
from sqlalchemy import text

pytestmark = pytest.mark.anyio


async def test_connections_enforce_foreign_keys_and_use_wal(app: FastAPI) -> None:
    async with app.state.database.engine.connect() as connection:
        foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
        journal_mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()

    assert foreign_keys == 1
    assert journal_mode == "wal"
