"""Configuration from the environment and `.env`, read once per process."""

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from fastapi import Depends, Request
from pydantic import (
{%- if cookiecutter.cache_backend == "memcached" %}
    AnyUrl,
{%- endif %}
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core.core_schema import ValidationInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SECRET_KEY_MIN_LENGTH = 32
# The async driver this project installs; DATABASE_URL must use it.
{%- if cookiecutter.database == "postgresql" %}
DATABASE_DRIVER = "postgresql+asyncpg"
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1/{{ cookiecutter.project_slug }}"
{%- else %}
DATABASE_DRIVER = "sqlite+aiosqlite"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./{{ cookiecutter.project_slug }}.db"
{%- endif %}


class Settings(BaseSettings):
    """Every setting is read from an environment variable of the same name, in upper case."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Signs and hashes credentials; `.env` gets a random one at generation time.
    secret_key: SecretStr

    # URLs are secrets: they may carry passwords, and SecretStr keeps them out of reprs and logs.
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
{%- if cookiecutter.database == "postgresql" %}
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=5, ge=0)
    # Shown in pg_stat_activity, so the service's connections can be told apart.
    database_application_name: str = "{{ cookiecutter.project_slug }}"
{%- endif %}
    # The database deadline: the longest one statement or one lock wait may take before the
    # request answers 503 (PostgreSQL's statement_timeout and lock_timeout, SQLite's busy timeout).
    database_statement_timeout_seconds: float = Field(default=5.0, gt=0)
    # The longest a request waits for a pooled connection, or to open one. At most the deadline:
    # a request must not queue longer for a connection than any statement may run.
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0)
{%- if cookiecutter.cache_backend == "redis" %}

    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    # Redis Cluster: REDIS_URL names any node; the client finds the others and each key's node.
    redis_cluster: bool = False
    # On a cluster, a command whose node failed is tried again this many times after re-reading
    # the slot map: once catches a promotion that already happened. More would only wait on a
    # master that is still down (redis-py's default of 10 spends seconds there); the cache call
    # fails open instead, and its deadline (CACHE_TIMEOUT_SECONDS) bounds all attempts together.
    redis_cluster_retries: int = Field(default=1, ge=0)
    # Each worker may also keep up to this many bytes of the cached responses it read, answered
    # with no round trip and dropped through Redis pub/sub (see cache/local.py); 0: off.
    local_cache_max_bytes: int = Field(default=0, ge=0)
    # With local copies on, a worker serves them only while Redis answered its channel within
    # this long, and every write waits this long before its 2xx: a worker cut off from Redis
    # has stopped serving them by then. Set the same on every instance.
    local_cache_lease_seconds: float = Field(default=0.25, gt=0)
    # With replicas that may be promoted (Sentinel, a managed failover): every version change
    # waits until this many replicas hold it, else the write answers 503. Replication is
    # asynchronous, so without it a promoted replica may lack a write's invalidation. 0: off.
    redis_min_replicas: int = Field(default=0, ge=0)
{%- elif cookiecutter.cache_backend == "memcached" %}

    memcached_url: AnyUrl = AnyUrl("memcached://127.0.0.1:11211")
    memcached_pool_size: int = Field(default=10, ge=1)
{%- elif cookiecutter.cache_backend == "dynamodb" %}

    # The cache table; `python -m {{ cookiecutter.project_slug }} migrate` creates it when missing.
    dynamodb_table: str = Field(
        default="{{ cookiecutter.project_slug }}_cache",
        pattern=r"^[A-Za-z0-9_.-]{3,255}$",
    )
    # Empty for AWS itself; a URL for DynamoDB Local (or a VPC endpoint). Credentials come from
    # the standard AWS chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a role).
    dynamodb_endpoint_url: HttpUrl | None = HttpUrl("http://127.0.0.1:8100")
    aws_region: str = Field(default="us-east-1", min_length=1)
    # Optional: read here so that `.env` can hold them too (DynamoDB Local takes any pair).
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    dynamodb_pool_size: int = Field(default=10, ge=1)
{%- elif cookiecutter.cache_backend == "memory" %}

    # The in-process cache drops its least recently used entries beyond this many.
    memory_cache_max_entries: int = Field(default=10_000, ge=1)
{%- endif %}
    # Every cache key starts with this prefix, so several services can share one cache server.
    cache_prefix: str = Field(
        default="{{ cookiecutter.project_slug }}",
        pattern=r"^[A-Za-z0-9_.-]+$",
    )
    cache_ttl_seconds: int = Field(default=60, ge=1)
    # How long a request waits for another one computing the same cached response.
    cache_lock_seconds: float = Field(default=5.0, gt=0)
    # Every cache call gives up after this long: a cache answers in well under a millisecond,
    # so waiting longer only turns a hung server into hung requests. Not much lower: under load
    # an event loop can take a few hundred ms to get back to a call that was answered in time.
    cache_timeout_seconds: float = Field(default=0.5, gt=0)
    # After a failure the cache is skipped for about this long; then one request probes it.
    cache_breaker_seconds: float = Field(default=5.0, gt=0)
    # A failing cache server is reported at most once per this many seconds.
    cache_warning_interval_seconds: float = Field(default=30.0, gt=0)
    # How long a token's user stays cached; revoking the token forgets it at once.
    auth_cache_ttl_seconds: int = Field(default=60, ge=1)
    # A larger request body answers 413 before it is read (middleware/body_limit.py).
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # Readiness probes give up on a dependency after this long.
    health_check_timeout_seconds: float = Field(default=2.0, gt=0)
    # While this file exists, writes answer 503: touch it before a failover, remove it after.
    maintenance_file: Path | None = None

    # Item changes are POSTed here, signed with WEBHOOK_SECRET when set; unset, none are sent.
    # SecretStr: webhook URLs often carry a token.
    webhook_url: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    # An upstream whose status GET /api/upstream reports (cached across workers); unset: 404.
    # SecretStr: such URLs often carry a token.
    upstream_status_url: SecretStr | None = None
    # GET /metrics (api/metrics.py): with a token, only `Authorization: Bearer <token>` reads
    # it; without one, anyone outside production and nobody in production.
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    # Unhandled errors go to this Sentry project (error_reporting.py); empty: not reported.
    # Traces are configured by the standard OTEL_* variables instead (tracing.py).
    sentry_dsn: SecretStr = SecretStr("")
    # The one outgoing HTTP client (webhooks and any upstream you add) is bounded by these.
    http_timeout_seconds: float = Field(default=5.0, gt=0)
    http_max_connections: int = Field(default=20, ge=1)

    # Web pages on these origins may call the API from a browser (middleware/cors.py): a JSON
    # list or comma-separated, each `scheme://host[:port]` as browsers send it, or `*` for any.
    # Empty: no CORS headers at all, so browsers keep cross-origin pages out.
    cors_origins: Annotated[list[str], NoDecode] = []
    # Only for cookie-based logins: bearer tokens need no credentials mode.
    cors_allow_credentials: bool = False
    # Swagger UI at /docs, ReDoc at /redoc and the schema at /openapi.json (assets served by
    # the app itself, api/docs.py); false: all of them answer 404.
    api_docs: bool = True

    @field_validator("secret_key")
    @classmethod
    def require_long_secret_key(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < SECRET_KEY_MIN_LENGTH:
            raise ValueError(
                f"SECRET_KEY must be at least {SECRET_KEY_MIN_LENGTH} characters; generate one "
                "with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def require_async_driver(cls, value: SecretStr) -> SecretStr:
        try:
            url = make_url(value.get_secret_value())
        except ArgumentError:
            raise ValueError("DATABASE_URL is not a database URL") from None
        if url.drivername != DATABASE_DRIVER:
            raise ValueError(f"DATABASE_URL must start with {DATABASE_DRIVER}://")
        return value

    @model_validator(mode="after")
    def require_pool_timeout_within_deadline(self) -> Self:
        if self.database_pool_timeout_seconds > self.database_statement_timeout_seconds:
            raise ValueError(
                f"DATABASE_POOL_TIMEOUT_SECONDS ({self.database_pool_timeout_seconds:g}) must not "
                "exceed DATABASE_STATEMENT_TIMEOUT_SECONDS "
                f"({self.database_statement_timeout_seconds:g}): a request would wait longer for "
                "a connection than the database deadline allows"
            )
        return self

    @field_validator("cors_origins", mode="before")
    @classmethod
    def split_origins(cls, value: Any) -> Any:
        """A JSON list as pydantic-settings reads lists, or the friendlier comma-separated form."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError("CORS_ORIGINS is not a valid JSON list") from None
        return [origin for origin in value.split(",") if origin.strip()]

    @field_validator("cors_origins")
    @classmethod
    def require_origins(cls, origins: list[str]) -> list[str]:
        return [origin_as_browsers_send_it(origin) for origin in origins]

    @model_validator(mode="after")
    def refuse_any_origin_with_credentials(self) -> Self:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "CORS_ORIGINS=* with CORS_ALLOW_CREDENTIALS=true would let any web page act "
                "with its visitors' cookies: list the allowed origins instead"
            )
        return self

    @field_validator("metrics_token")
    @classmethod
    def treat_empty_token_as_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("webhook_url", "upstream_status_url")
    @classmethod
    def require_http_url(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None:
            try:
                HttpUrl(value.get_secret_value())
            except ValidationError:
                name = (info.field_name or "the URL").upper()
                raise ValueError(f"{name} must be an http:// or https:// URL") from None
        return value
{%- if cookiecutter.cache_backend == "memcached" %}

    @field_validator("memcached_url")
    @classmethod
    def require_memcached_scheme(cls, value: AnyUrl) -> AnyUrl:
        if value.scheme != "memcached" or not value.host:
            raise ValueError("MEMCACHED_URL must look like memcached://host:11211")
        return value
{%- elif cookiecutter.cache_backend == "dynamodb" %}

    @field_validator("dynamodb_endpoint_url", mode="before")
    @classmethod
    def treat_empty_endpoint_as_aws(cls, value: Any) -> Any:
        return None if value == "" else value
{%- endif %}


def origin_as_browsers_send_it(value: str) -> str:
    """`value` as the Origin header would carry it (lower case), or a ValueError saying why not.

    The Origin header is compared as an exact string: a trailing slash or a path would never
    match, so they are refused here rather than silently failing in the browser.
    """
    origin = value.strip().lower()
    if origin == "*":
        return origin
    parts = urlsplit(origin)
    try:
        port_is_valid = parts.port is None or parts.port > 0
    except ValueError:  # not a number from 0 to 65535
        port_is_valid = False
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or not port_is_valid
        or f"{parts.scheme}://{parts.netloc}" != origin
    ):
        raise ValueError(
            f"CORS_ORIGINS: {origin!r} is not an origin; write scheme://host[:port] with no "
            "path or trailing slash, e.g. https://app.example.com"
        )
    return origin


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing the env."""
    return Settings()


async def get_app_settings(request: Request) -> Settings:
    """The settings the app started with: `get_settings()`, or its dependency override.

    The lifespan resolves them once; routes read them from there. An `async def`, because
    FastAPI runs a plain `def` dependency (as `get_settings` is) in its threadpool on every
    request.
    """
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
