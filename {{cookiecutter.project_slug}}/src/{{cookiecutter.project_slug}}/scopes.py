"""What an API token may do. Stored space-separated on the user, as OAuth 2 writes scopes."""

from collections.abc import Iterable

ITEMS_READ = "items:read"
ITEMS_WRITE = "items:write"
ALL_SCOPES = (ITEMS_READ, ITEMS_WRITE)


def join_scopes(scopes: Iterable[str]) -> str:
    return " ".join(scopes)


def split_scopes(stored: str) -> list[str]:
    return stored.split()
