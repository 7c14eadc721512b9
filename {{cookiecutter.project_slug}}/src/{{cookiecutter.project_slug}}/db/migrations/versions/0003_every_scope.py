"""Scopes that grow with the resources: `*` grants every scope, and the list has no length limit.

Users who held every scope there was (create-user's default) now hold `*`, which also grants
the scopes of resources added later. Users given a narrower list keep exactly that list.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVERY_SCOPE = "*"
# Every scope before this revision, in either order (create-user stored them as given).
ALL_SCOPES_BEFORE = ("items:read items:write", "items:write items:read")

users = sa.table("users", sa.column("scopes", sa.Text()))


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column(
            "scopes",
            existing_type=sa.String(length=200),
            type_=sa.Text(),
            server_default=EVERY_SCOPE,
            existing_nullable=False,
        )
    op.execute(
        users.update().where(users.c.scopes.in_(ALL_SCOPES_BEFORE)).values(scopes=EVERY_SCOPE)
    )


def downgrade() -> None:
    op.execute(
        users.update().where(users.c.scopes == EVERY_SCOPE).values(scopes=ALL_SCOPES_BEFORE[0])
    )
    with op.batch_alter_table("users") as batch:
        batch.alter_column(
            "scopes",
            existing_type=sa.Text(),
            type_=sa.String(length=200),
            server_default=ALL_SCOPES_BEFORE[0],
            existing_nullable=False,
        )
