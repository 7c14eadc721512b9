"""Amazon DynamoDB through aiobotocore: one client with a sized connection pool per process.

fastapi-cache2's DynamoBackend is not used: it cannot reach DynamoDB Local (no endpoint URL),
serves items past their expiry (DynamoDB deletes expired items lazily, within days), reads
without ConsistentRead, and cannot add or change a version atomically. DynamoDB has no channel to
tell other workers what changed, so there is no local tier: a HIT is one BatchGetItem, with
consistent reads, of the keys it needs (identity, versions, entry: see keys.py).

The table (created by `python -m <package> migrate`, see create_table_if_missing):

    key         S  hash key
    value       B  an entry, a lock, an identity or a settled version (entries.py)
    version     N  a namespace's version, changed by UpdateItem (bump below) ...
    pending     N  ... with the count of its writes in flight
    expires_at  N  Unix time; the table's TTL attribute, and checked on every read
"""

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from {{ cookiecutter.project_slug }}.cache.backend import (
    PENDING_WRITE_SECONDS,
    SETTLED_VERSION_SECONDS,
    LocalCopies,
)
from {{ cookiecutter.project_slug }}.cache.entries import State
from {{ cookiecutter.project_slug }}.cache.guard import StoreRefusedError
from {{ cookiecutter.project_slug }}.settings import Settings

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import AttributeValueTypeDef

logger = logging.getLogger(__name__)

# DynamoDB refuses items over 400 KB, attribute names included.
MAX_ITEM_BYTES = 400 * 1024
# A BatchGetItem may leave keys unprocessed when throttled; ask again this many times, after
# backing off (doubling each time; the guard's deadline bounds the whole read).
BATCH_ATTEMPTS = 5
BATCH_BACKOFF_SECONDS = 0.01
# Conditional updates that lost a race to another writer are retried this many times.
UPDATE_ATTEMPTS = 20
# A key of no entry: the readiness probe reads it to prove the table answers.
PROBE_KEY = "health:probe"

# A namespace state's two cases (see backend.CacheStore.bump), each the other's negation:
# another write is still in flight, so count this one in (or out) and keep the expiry of the
# first one's mark ...
OVERLAPPING_CONDITION = "expires_at > :now AND #pending > :floor"
OVERLAPPING_UPDATE = "SET version = :version ADD #pending :delta"
# ... or none is: start a new mark, or settle the version.
FIRST_OR_LAST_CONDITION = (
    "attribute_not_exists(#pending) OR expires_at <= :now OR #pending <= :floor"
)
FIRST_OR_LAST_UPDATE = (
    "SET version = :version, #pending = :pending, expires_at = :expires_at REMOVE #value"
)


def number(value: float) -> "AttributeValueTypeDef":
    return {"N": f"{value:.3f}"}


def item_size(key: str, value: bytes) -> int:
    """The size DynamoDB counts: attribute names and values (a number takes at most 21 bytes)."""
    return len("key") + len(key.encode()) + len("value") + len(value) + len("expires_at") + 21


# What DynamoDB answers when a table's capacity (or the account's request rate) is used up, once
# botocore's own retries gave up: the service answers, it only will not store now.
THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)


@contextmanager
def throttling_reported() -> Iterator[None]:
    """A store DynamoDB throttled as the refusal it is: the table still answers reads."""
    try:
        yield
    except ClientError as error:
        if error.response["Error"]["Code"] in THROTTLING_CODES:
            raise StoreRefusedError("DynamoDB throttled the store") from error
        raise


class DynamoDBStore:
    def __init__(self, client: "DynamoDBClient", table: str, warning_interval: float) -> None:
        self.client = client
        self.table = table
        self.warning_interval = warning_interval
        self.last_size_warning = -math.inf

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """One BatchGetItem with consistent reads: a write's 2xx is seen by the next read."""
        wanted = list(dict.fromkeys(keys))  # BatchGetItem refuses a key asked for twice
        request: dict[str, Any] = {
            self.table: {"Keys": [{"key": {"S": key}} for key in wanted], "ConsistentRead": True}
        }
        found: dict[str, bytes | None] = {}
        now = time.time()
        for attempt in range(BATCH_ATTEMPTS):
            answer = await self.client.batch_get_item(RequestItems=request)
            for item in answer["Responses"].get(self.table, []):
                found[item["key"]["S"]] = stored_value(item, now)
            # Keys left unread (throttling) come back with their ConsistentRead flag.
            request = dict(answer.get("UnprocessedKeys") or {})
            if not request:
                return [found.get(key) for key in keys]
            await asyncio.sleep(BATCH_BACKOFF_SECONDS * 2**attempt)
        raise RuntimeError(f"DynamoDB left keys unread after {BATCH_ATTEMPTS} attempts")

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store `value`, unless it is over DynamoDB's item limit: then warn, and leave it out.

        Checked here rather than left to DynamoDB's refusal, which would count as a cache
        failure and stop all caching for CACHE_BREAKER_SECONDS.
        """
        size = item_size(key, value)
        if size > MAX_ITEM_BYTES:
            self.warn_too_large(key, size)
            return
        with throttling_reported():
            await self.client.put_item(TableName=self.table, Item=item(key, value, ttl))

    async def add(self, key: str, value: bytes, ttl: int) -> bool:
        """A conditional put: stored only if absent, or expired but not yet deleted."""
        with throttling_reported():
            try:
                await self.client.put_item(
                    TableName=self.table,
                    Item=item(key, value, ttl),
                    ConditionExpression="attribute_not_exists(#key) OR expires_at <= :now",
                    ExpressionAttributeNames={"#key": "key"},
                    ExpressionAttributeValues={":now": number(time.time())},
                )
            except ClientError as error:
                if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    async def delete(self, key: str) -> None:
        await self.client.delete_item(TableName=self.table, Key={"key": {"S": key}})

    async def bump(self, state_key: str, version: int, pending_delta: int) -> None:
        """One UpdateItem in the usual case: its condition says which case holds.

        The two conditions are each other's negation, so the second holds when the first did
        not, unless another write changed the state in between: then both are tried again.
        """
        pending = max(pending_delta, 0)
        # No other write in flight: a count of at most this, after a write counted itself out.
        floor = max(-pending_delta, 0)
        for _ in range(UPDATE_ATTEMPTS):
            now = time.time()
            lifetime = PENDING_WRITE_SECONDS if pending else SETTLED_VERSION_SECONDS
            values: dict[str, AttributeValueTypeDef] = {
                ":now": number(now),
                ":floor": {"N": str(floor)},
                ":version": {"N": str(version)},
            }
            first_or_last = values | {
                ":pending": {"N": str(pending)},
                ":expires_at": number(now + lifetime),
            }
            if await self.update(
                state_key,
                FIRST_OR_LAST_CONDITION,
                FIRST_OR_LAST_UPDATE,
                first_or_last,
                {"#pending": "pending", "#value": "value"},
            ):
                return
            if await self.update(
                state_key,
                OVERLAPPING_CONDITION,
                OVERLAPPING_UPDATE,
                values | {":delta": {"N": str(pending_delta)}},
                {"#pending": "pending"},
            ):
                return
        raise RuntimeError(f"{state_key} kept changing; gave up after {UPDATE_ATTEMPTS} attempts")

    async def update(
        self,
        key: str,
        condition: str,
        update: str,
        values: "dict[str, AttributeValueTypeDef]",
        names: dict[str, str],
    ) -> bool:
        """Apply `update` if `condition` holds; False if it did not."""
        try:
            await self.client.update_item(
                TableName=self.table,
                Key={"key": {"S": key}},
                ConditionExpression=condition,
                UpdateExpression=update,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def ping(self) -> None:
        """A read of the table itself: fails if it is missing or the credentials are refused."""
        await self.client.get_item(TableName=self.table, Key={"key": {"S": PROBE_KEY}})

    def after_timeout(self) -> None:
        """Nothing to reset: aiohttp closes a connection whose request was cancelled."""

    def warn_too_large(self, key: str, size: int) -> None:
        now = time.monotonic()
        if now - self.last_size_warning >= self.warning_interval:
            self.last_size_warning = now
            logger.warning(
                "a cache entry of %d bytes is over DynamoDB's item limit of %d bytes; it is not "
                "cached (%s)",
                size,
                MAX_ITEM_BYTES,
                key.rpartition(":")[0],
            )


def item(key: str, value: bytes, ttl: int) -> "dict[str, AttributeValueTypeDef]":
    return {"key": {"S": key}, "value": {"B": value}, "expires_at": number(time.time() + ttl)}


def stored_value(item: "dict[str, Any]", now: float) -> bytes | None:
    """An item's value, or None once it expired: DynamoDB deletes expired items lazily."""
    if "expires_at" not in item or float(item["expires_at"]["N"]) <= now:
        return None  # expired, or not written by this code
    if "version" in item:
        return State(int(item["version"]["N"]), int(item["pending"]["N"])).encode()
    value: bytes = item["value"]["B"]
    return value


def client_options(settings: Settings) -> dict[str, Any]:
    """Where the client connects, and as whom: the settings' keys, else the standard chain."""
    options: dict[str, Any] = {"region_name": settings.aws_region}
    if settings.dynamodb_endpoint_url is not None:
        options["endpoint_url"] = str(settings.dynamodb_endpoint_url)
    if settings.aws_access_key_id is not None and settings.aws_secret_access_key is not None:
        options["aws_access_key_id"] = settings.aws_access_key_id.get_secret_value()
        options["aws_secret_access_key"] = settings.aws_secret_access_key.get_secret_value()
    return options


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[tuple[DynamoDBStore, LocalCopies | None]]:
    config = AioConfig(
        # The guard's deadline cuts every call short anyway; these keep a dead connection from
        # holding a pooled slot longer.
        connect_timeout=settings.cache_timeout_seconds,
        read_timeout=settings.cache_timeout_seconds,
        # One retry of a throttled or dropped call, within the guard's deadline.
        retries={"mode": "standard", "total_max_attempts": 2},
        max_pool_connections=settings.dynamodb_pool_size,
    )
    options = client_options(settings)
    async with get_session().create_client("dynamodb", config=config, **options) as client:
        table, interval = settings.dynamodb_table, settings.cache_warning_interval_seconds
        yield DynamoDBStore(client, table, interval), None


class CacheTableError(Exception):
    """The cache table could not be checked or created; the message says why."""


async def create_table_if_missing(settings: Settings) -> list[str]:
    """Create the cache table and turn on its TTL where needed; what was done, for the CLI."""
    table = settings.dynamodb_table
    done = []
    # A command, not a request: seconds are fine, but an unreachable server must not take
    # botocore's default of five attempts with backoff.
    config = AioConfig(
        connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 2}
    )
    options = client_options(settings)
    try:
        async with get_session().create_client("dynamodb", config=config, **options) as client:
            try:
                await client.describe_table(TableName=table)
            except client.exceptions.ResourceNotFoundException:
                await client.create_table(
                    TableName=table,
                    KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
                await client.get_waiter("table_exists").wait(TableName=table)
                done.append(f"Created the cache table {table}.")
            ttl = await client.describe_time_to_live(TableName=table)
            if ttl["TimeToLiveDescription"].get("TimeToLiveStatus") in (None, "DISABLED"):
                await client.update_time_to_live(
                    TableName=table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
                )
                done.append(f"Turned on TTL (expires_at) for the cache table {table}.")
    except (BotoCoreError, ClientError) as error:
        raise CacheTableError(
            f"could not prepare the cache table {table} at "
            f"{settings.dynamodb_endpoint_url or 'AWS'} ({settings.aws_region}): {error}"
        ) from error
    return done
