"""Scopes on users: what each API token may do.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing users keep every scope they implicitly had.
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "scopes",
                sa.String(length=200),
                server_default="items:read items:write",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("scopes")
