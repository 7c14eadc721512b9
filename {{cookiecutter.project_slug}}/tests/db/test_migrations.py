from typing import Any

import anyio
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.project_slug }}.db.migrate import alembic_config, upgrade_to_head
from {{ cookiecutter.project_slug }}.db.models import Base, User

from tests.db.{{ cookiecutter.database }}_database import isolated_database_url

pytestmark = pytest.mark.anyio


def pending_changes(connection: Connection, metadata: MetaData = Base.metadata) -> list[Any]:
    # The options of db/migrations/env.py, which autogenerate uses.
    opts = {"compare_type": True, "compare_server_default": True}
    context = MigrationContext.configure(connection, opts=opts)
    return list(compare_metadata(context, metadata))


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


async def test_a_changed_server_default_is_drift(database_url: str) -> None:
    """A new default in the models without a migration fails the check above, not only types."""
    changed = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["users"].c.scopes.server_default = None

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            changes = await connection.run_sync(pending_changes, changed)
    finally:
        await engine.dispose()

    # One list of column changes, for users.scopes, whose first names what changed.
    assert [change[0][0] for change in changes] == ["modify_default"]


async def test_users_with_every_scope_keep_every_scope_as_resources_are_added() -> None:
    """Users made by create-user's default before scopes grew hold `*`; narrower lists stay."""
    async with isolated_database_url() as url:
        await anyio.to_thread.run_sync(command.upgrade, alembic_config(url), "0002")
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text("INSERT INTO users (name, token_hash, scopes) VALUES (:n, :n, :scopes)"),
                    [
                        {"n": "everything", "scopes": "items:read items:write"},
                        {"n": "reader", "scopes": "items:read"},
                    ],
                )
                # Left to the column's server default of revision 0002.
                await connection.execute(
                    text("INSERT INTO users (name, token_hash) VALUES ('defaulted', 'defaulted')")
                )
            await anyio.to_thread.run_sync(upgrade_to_head, url)
            async with engine.connect() as connection:
                rows = await connection.execute(select(User.name, User.scopes).order_by(User.name))
                scopes_by_name = dict(rows.all())
        finally:
            await engine.dispose()

    assert scopes_by_name == {"defaulted": "*", "everything": "*", "reader": "items:read"}
