"""ORM models. API schemas live apart from them, so storage and wire formats change separately.

Every table a user owns derives from OwnedRecord: its owner, its timestamps, and the owner
lookup and scopes every per-user resource shares (README: "Adding a resource").
"""

from datetime import UTC, datetime
from typing import Self

from sqlalchemy import DateTime, Dialect, ForeignKey, MetaData, String, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from {{ cookiecutter.project_slug }}.scopes import EVERY_SCOPE

# Named constraints, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class RecordNotFoundError(LookupError):
    """No such row for this owner; the API answers 404 with the message (errors.py)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every database: SQLite stores no offset and returns naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use timezone-aware UTC values")
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # HMAC-SHA256 of the API token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # What the token may do, space-separated: see scopes.py. The default, every scope, stays
    # the same string whatever resources are added, so a new resource needs no migration here.
    scopes: Mapped[str] = mapped_column(Text, default=EVERY_SCOPE, server_default=EVERY_SCOPE)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utc_now, server_default=func.now()
    )


class OwnedRecord(Base):
    """A row that belongs to one user, who alone may see or change it; removed with the user.

    The table name names the resource: its scopes are `<table>:read` and `<table>:write`.
    """

    __abstract__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utc_now, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utc_now, onupdate=utc_now, server_default=func.now()
    )

    @classmethod
    async def get_owned(cls, session: AsyncSession, owner_id: int, record_id: int) -> Self:
        """Row `record_id` of user `owner_id`; RecordNotFoundError if missing or someone else's.

        Both cases answer alike, so nobody learns which ids exist.
        """
        query = select(cls).where(cls.id == record_id, cls.owner_id == owner_id)
        record = await session.scalar(query)
        if record is None:
            raise RecordNotFoundError(f"{cls.__name__} not found")
        return record


class Item(OwnedRecord):
    __tablename__ = "items"

    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)


def owned_tables() -> list[str]:
    """The name of every table users own, that is of every resource, in alphabetical order."""
    return sorted(
        mapper.class_.__tablename__
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, OwnedRecord)
    )
