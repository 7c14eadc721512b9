import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.project_slug }}.db.models import Base

pytestmark = pytest.mark.anyio


def pending_changes(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrations_build_exactly_the_models(database_url: str) -> None:
    """The session's database was built by the migrations; autogenerate must find nothing."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            changes = await connection.run_sync(pending_changes)
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()

    assert changes == []
    assert {"users", "items", "alembic_version"} <= set(tables)
