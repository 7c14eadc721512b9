"""Where everything lives in the cache, and the one canonical key of a request.

A partition is what one write invalidates together: one user's responses (`user:42`) or a
namespace every caller shares (`shared:<namespace>`). Each namespace of a partition has a version
state and entries:

    {orders:user:42}:items:state        version and writes in flight (entries.py)
    {orders:user:42}:items:<digest>     one cached response
    {orders:user:42}:identity:<digest>  the user behind one token

The braces are a Redis hash tag: every key of a partition lives in one slot, so a HIT reads the
caller's identity, both versions and the entry in one round trip, on one server or a cluster.
"""

import hashlib
from urllib.parse import parse_qsl, urlencode

from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import Scope

IDENTITY = "identity"


def user_partition(user_id: int) -> str:
    return f"user:{user_id}"


def shared_partition(namespace: str) -> str:
    return f"shared:{namespace}"


def namespace_key(prefix: str, partition: str, namespace: str) -> str:
    hash_tag = f"{prefix}:{partition}"
    # Braces built by hand: doubled ones would read as template syntax to the project generator.
    return "{" + hash_tag + "}:" + namespace


def identity_key(prefix: str, user_id: int, token: str) -> str:
    """Where the user behind `token` is cached (auth.py), by the token's digest."""
    return f"{namespace_key(prefix, user_partition(user_id), IDENTITY)}:{digest(token)}"


def namespace_state_key(namespace_key: str) -> str:
    """Where a namespace's version state is (entries.py)."""
    return f"{namespace_key}:state"


def state_key(entry_key: str) -> str:
    """The version state an entry must match: its namespace's (an entry key ends in a digest)."""
    return namespace_state_key(entry_key.rpartition(":")[0])


def digest(*parts: str) -> str:
    """Bounded, separator-free key material, however long the parts are."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def canonical_query(query_string: bytes) -> str:
    """The query string with its parameters sorted: the same request, whatever their order."""
    if not query_string:
        return ""
    return urlencode(sorted(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)))


def request_digest(scope: Scope, token: str) -> str:
    """One key per caller (bearer token, empty for shared responses), path and full query.

    The same key names the response in both tiers. A key holds a SHA-256 of the token, never
    the token: tokens carry 256 random bits, so the digest cannot be turned back into one.
    """
    query = canonical_query(scope["query_string"])
    return digest(token, scope["method"], scope["path"], query)


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`, parsed as FastAPI's HTTPBearer does."""
    scheme, token = get_authorization_scheme_param(authorization)
    return token if scheme.lower() == "bearer" and token else None


def token_owner(token: str) -> int | None:
    """The user id a token names (`<id>.<secret>`); it decides only where to look, never access."""
    owner, separator, _ = token.partition(".")
    if separator and owner.isascii() and owner.isdigit() and len(owner) <= 18:
        return int(owner)
    return None
