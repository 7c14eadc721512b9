"""The API's request and response bodies, kept apart from the ORM models."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from {{ cookiecutter.project_slug }}.scopes import split_scopes


class UserRead(BaseModel):
    """A user as the API shows it: never the token or its hash."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    scopes: list[str]
    created_at: datetime

    @field_validator("scopes", mode="before")
    @classmethod
    def split_stored_scopes(cls, value: Any) -> Any:
        return split_scopes(value) if isinstance(value, str) else value


class ItemWrite(BaseModel):
    """The body of POST /api/items and PUT /api/items/{id}."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)

    @field_validator("name", "description")
    @classmethod
    def refuse_nul(cls, value: str | None) -> str | None:
        # PostgreSQL cannot store NUL in text; refusing it everywhere keeps databases alike.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
