"""The API's request and response bodies, kept apart from the ORM models."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class UserRead(BaseModel):
    """A user as the API shows it: never the token or its hash."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_at: datetime


class ItemWrite(BaseModel):
    """The body of POST /api/items and PUT /api/items/{id}."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
