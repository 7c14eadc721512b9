"""The API's shared request and response bodies, kept apart from the ORM models.

A resource added later keeps its own bodies in its module (README: "Adding a resource").
"""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from {{ cookiecutter.project_slug }}.scopes import split_scopes


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Text every database stores alike: PostgreSQL cannot store NUL, so no database gets one.
StoredText = Annotated[str, AfterValidator(refuse_nul)]


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

    name: StoredText = Field(min_length=1, max_length=200)
    description: StoredText | None = Field(default=None, max_length=2000)


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
