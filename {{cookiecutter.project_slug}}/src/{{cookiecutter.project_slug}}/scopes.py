"""What an API token may do. Stored space-separated on the user, as OAuth 2 writes scopes.

Each per-user resource has two scopes, `<table>:read` and `<table>:write` (db/models.py,
OwnedRecord). A user created without a list of scopes holds EVERY_SCOPE, which grants every
scope there is, those of resources added later included: adding a resource needs no migration
to grant its scopes. A token given a list keeps exactly that list.
"""

from collections.abc import Collection, Iterable

EVERY_SCOPE = "*"
ACCESS_KINDS = ("read", "write")


def resource_scopes(resource: str) -> tuple[str, ...]:
    return tuple(f"{resource}:{access}" for access in ACCESS_KINDS)


def grants(held: Collection[str], scope: str) -> bool:
    return scope in held or EVERY_SCOPE in held


def join_scopes(scopes: Iterable[str]) -> str:
    return " ".join(scopes)


def split_scopes(stored: str) -> list[str]:
    return stored.split()
