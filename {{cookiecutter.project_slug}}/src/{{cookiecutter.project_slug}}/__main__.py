"""The command line: `migrate` and `create-user NAME [--scope SCOPE]`.

Run as `python -m {{ cookiecutter.project_slug }} COMMAND`.
"""

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from {{ cookiecutter.project_slug }}.auth import known_scopes
{% if cookiecutter.cache_backend == "dynamodb" -%}
from {{ cookiecutter.project_slug }}.cache.dynamodb import (
    CacheTableError,
    create_table_if_missing,
)
{% endif -%}
from {{ cookiecutter.project_slug }}.db.database import open_database
from {{ cookiecutter.project_slug }}.db.errors import ExplainedDatabaseError
from {{ cookiecutter.project_slug }}.db.migrate import upgrade_to_head
from {{ cookiecutter.project_slug }}.db.{{ cookiecutter.database }} import (
    create_database_if_missing,
    create_engine,
    explained_failures,
)
from {{ cookiecutter.project_slug }}.scopes import EVERY_SCOPE
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings
from {{ cookiecutter.project_slug }}.users import UserExistsError, create_user

USER_NAME_MAX_LENGTH = 100


def user_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > USER_NAME_MAX_LENGTH:
        raise argparse.ArgumentTypeError(f"must be 1 to {USER_NAME_MAX_LENGTH} characters")
    return name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.project_slug }}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "migrate",
{%- if cookiecutter.cache_backend == "dynamodb" %}
        help="create the database and the cache table if they are missing, then apply every "
        "pending migration",
{%- else %}
        help="create the database if it is missing, then apply every pending migration",
{%- endif %}
    )
    create = commands.add_parser(
        "create-user", help="create a user and print its API token as the last line"
    )
    create.add_argument("name", type=user_name, help="a unique user name")
    create.add_argument(
        "--scope",
        action="append",
        choices=known_scopes(),
        dest="scopes",
        help="what the token may do; repeat for several (default: every scope, those of "
        "resources added later included)",
    )
    return parser


async def create_user_command(settings: Settings, name: str, scopes: Sequence[str]) -> str:
    async with (
        open_database(create_engine(settings)) as database,
        database.sessionmaker() as session,
    ):
        user, token = await create_user(session, name, settings, scopes)
        await session.commit()
    granted = "every scope" if user.scopes == EVERY_SCOPE else user.scopes
    print(
        f"Created user {user.name!r} (id {user.id}, scopes: {granted}). "
        "Its API token, shown only this once:"
    )
    return token


def migrate_command(settings: Settings) -> None:
    created = asyncio.run(create_database_if_missing(settings))
    if created:
        print(f"Created {created}.")
    upgrade_to_head(settings.database_url.get_secret_value())
    print("The database is at the latest migration.")
{%- if cookiecutter.cache_backend == "dynamodb" %}
    for done in asyncio.run(create_table_if_missing(settings)):
        print(done)
{%- endif %}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as error:
        print(f"error: invalid configuration (environment or .env):\n{error}", file=sys.stderr)
        return 2
    try:
        with explained_failures(settings, parser.prog):
            if args.command == "migrate":
                migrate_command(settings)
            else:
                scopes = args.scopes or [EVERY_SCOPE]
                print(asyncio.run(create_user_command(settings, args.name, scopes)))
{%- if cookiecutter.cache_backend == "dynamodb" %}
    except (UserExistsError, ExplainedDatabaseError, CacheTableError) as error:
{%- else %}
    except (UserExistsError, ExplainedDatabaseError) as error:
{%- endif %}
        print(f"error: {error}", file=sys.stderr)
        return 1
    except DBAPIError as error:
        # A cause explained_failures does not know: the type names it; the message could
        # quote the statement's parameters.
        print(
            f"error: the database refused the command ({type(error.orig).__name__}).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
