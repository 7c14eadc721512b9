"""Validation of the answers given to the template's prompts.

The rules run twice. First while cookiecutter renders the answers: the `check_answers` filter,
applied by the private `__answers_checked` variable in cookiecutter.json, raises before anything
is written. That matters because cookiecutter creates the project directory, named after the
slug, before the pre-generation hook runs, and removes only that directory when the hook fails:
a slug such as `../x` would leave directories behind. Second, `hooks/pre_gen_project.py` runs
the same rules for paths that skip rendering (for example `cookiecutter --replay`).
"""

from __future__ import annotations

import importlib.metadata
import json
import keyword
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import cookiecutter
from jinja2 import Environment
from jinja2.ext import Extension
from slugify import slugify

from text_filters import python_string

TEMPLATE_ROOT = Path(__file__).resolve().parent

# Import names of the generated project's dependencies (runtime and dev). A package with one of
# these names would shadow the real library inside the generated project.
DEPENDENCY_IMPORT_NAMES = frozenset(
    {
        "aiobotocore",
        "aiohttp",
        "aiomcache",
        "aiosqlite",
        "alembic",
        "anyio",
        "asgi_lifespan",
        "asyncpg",
        "botocore",
        "fastapi",
        "fastapi_cache",
        "greenlet",
        "h11",
        "httpcore",
        "httpx",
        "jinja2",
        "mypy",
        "pendulum",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "pytest",
        "redis",
        "ruff",
        "sqlalchemy",
        "starlette",
        "types_aiobotocore_dynamodb",
        "typing_extensions",
        "uvicorn",
        "uvloop",
    }
)
# sys.stdlib_module_names leaves out CPython's own regression-test package, `test`.
STDLIB_NAMES = sys.stdlib_module_names | {"test"}
# Directory names the generated project uses for other things.
RESERVED_NAMES = frozenset({"src", "tests", "migrations", "docs"})

SLUG_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
SLUG_MAX_LENGTH = 32
# A derived slug that would start with a digit gets this word in front.
SLUG_PREFIX = "my"
# Apostrophes join a word ("O'Brien's" -> obriens) instead of splitting it.
APOSTROPHES = re.compile(r"['\u2019\u02bc]")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
# Free text is escaped for each file it lands in (text_filters.py), but a line break or another
# control character has no place in a one-line answer.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
TEXT_LIMITS = {"project_name": 60, "author_name": 80, "description": 200}
CHOICE_FIELDS = ("python_version", "cache_backend", "database", "ci", "license")
BOOLEAN_FIELDS = ("docker",)
# Boolean variables (`"docker": true`) came in cookiecutter 2.2; older ones pass the string "True".
MINIMUM_COOKIECUTTER = (2, 2)


class InvalidAnswersError(click.ClickException):
    """Raised while rendering the answers; cookiecutter's CLI prints it as `Error: ...`, exit 1."""


def package_name(name: str) -> str:
    """The package name a display name suggests: "Café Münster API" -> cafe_munster_api.

    Accents and other scripts are transliterated to ASCII (python-slugify, which cookiecutter
    itself depends on), punctuation and spaces become single underscores, a leading digit gets
    a word in front, and a long result is cut at a word boundary.
    """
    slug = slugify(APOSTROPHES.sub("", name), separator="_")
    if not slug[:1].isalpha():
        slug = f"{SLUG_PREFIX}_{slug}".rstrip("_")
    if len(slug) > SLUG_MAX_LENGTH:
        cut = slug[: SLUG_MAX_LENGTH + 1]
        slug = cut.rsplit("_", 1)[0] if "_" in cut else slug[:SLUG_MAX_LENGTH]
    return slug


def suggest_slug(value: str) -> str:
    """A valid-looking package name derived from `value`, for error messages."""
    return f"{package_name(value)[: SLUG_MAX_LENGTH - 8].rstrip('_')}_service"


def slug_problem(slug: str) -> str | None:
    suggestion = suggest_slug(slug)
    if not SLUG_PATTERN.fullmatch(slug):
        return (
            f"project_slug {slug!r} is not a valid package name: use lowercase ASCII letters, "
            f"digits and underscores, starting with a letter (for example {suggestion!r})."
        )
    if len(slug) > SLUG_MAX_LENGTH:
        return f"project_slug {slug!r} is longer than {SLUG_MAX_LENGTH} characters."
    if keyword.iskeyword(slug):
        return f"project_slug {slug!r} is a Python keyword; choose a name such as {suggestion!r}."
    if slug in STDLIB_NAMES:
        return (
            f"project_slug {slug!r} would shadow the standard library module {slug!r}; "
            f"choose a name such as {suggestion!r}."
        )
    if slug in DEPENDENCY_IMPORT_NAMES:
        return (
            f"project_slug {slug!r} would shadow the {slug!r} package the project depends on; "
            f"choose a name such as {suggestion!r}."
        )
    if slug in RESERVED_NAMES:
        return (
            f"project_slug {slug!r} is a directory name the project uses itself; "
            f"choose a name such as {suggestion!r}."
        )
    return None


def text_problem(field: str, value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"{field} must not be empty."
    if CONTROL_CHARACTERS.search(value):
        return f"{field} {value!r} must be one line, without tabs or other control characters."
    limit = TEXT_LIMITS[field]
    if len(value) > limit:
        return f"{field} is {len(value)} characters long; keep it under {limit}."
    # The name is a string literal in main.py, where its escapes must fit the line length too.
    if field == "project_name" and len(python_string(value)) - 2 > limit:
        return (
            f"{field} is too long once its quotes and backslashes are escaped; "
            f"keep it under {limit} characters, counting each of those twice."
        )
    return None


def offered_choices() -> dict[str, list[str]]:
    """The choice lists as cookiecutter.json offers them (the single source of truth)."""
    offered = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
    return {field: offered[field] for field in CHOICE_FIELDS}


def find_problems(answers: Mapping[str, Any]) -> list[str]:
    """Every problem with `answers`, each saying what is wrong and what to type instead."""
    problems: list[str] = []
    for field in TEXT_LIMITS:
        problem = text_problem(field, answers.get(field))
        if problem:
            problems.append(problem)

    problem = slug_problem(str(answers.get("project_slug", "")))
    if problem:
        problems.append(problem)

    email = str(answers.get("author_email", ""))
    if not EMAIL_PATTERN.fullmatch(email):
        problems.append(
            f"author_email {email!r} is not an email address (for example jane@example.com)."
        )

    for field, choices in offered_choices().items():
        value = answers.get(field)
        if value not in choices:
            problems.append(
                f"{field} {value!r} is not offered; choose one of: {', '.join(choices)}."
            )

    for field in BOOLEAN_FIELDS:
        if not isinstance(answers.get(field), bool):
            problems.append(f"{field} must be yes or no, got {answers.get(field)!r}.")
    return problems


def format_problems(problems: list[str]) -> str:
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return f"The template answers need fixing; nothing was generated:\n{lines}"


def check_answers(answers: Mapping[str, Any]) -> str:
    """Jinja filter: raise on invalid answers, else render to 'ok'."""
    problems = find_problems(answers)
    if problems:
        raise InvalidAnswersError(format_problems(problems))
    return "ok"


def installed_cookiecutter() -> str:
    version = getattr(cookiecutter, "__version__", None)
    return str(version) if version else importlib.metadata.version("cookiecutter")


def require_cookiecutter(version: str) -> None:
    """Stop with the fix when cookiecutter is too old to read this template's answers right."""
    found = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if found < MINIMUM_COOKIECUTTER:
        minimum = ".".join(map(str, MINIMUM_COOKIECUTTER))
        raise click.ClickException(
            f"this template needs cookiecutter >= {minimum} (found {version}); nothing was "
            "generated. Install a current one with: pipx install cookiecutter "
            "(or: pip install --upgrade cookiecutter)"
        )


class AnswerValidation(Extension):
    """Registers `check_answers` so cookiecutter.json can validate while it renders the answers,
    and `package_name`, which derives the default slug from the project name.

    Loading it checks the cookiecutter version first: cookiecutter loads the template's extensions
    before it renders any answer, so an old version stops here with nothing written.

    Also publishes the template's absolute root as `template_root`: cookiecutter runs hooks from a
    temporary copy, and its `_repo_dir` may be relative to a directory the hook does not run in.
    """

    def __init__(self, environment: Environment) -> None:
        require_cookiecutter(installed_cookiecutter())
        super().__init__(environment)
        environment.filters["check_answers"] = check_answers
        environment.filters["package_name"] = package_name
        environment.globals["template_root"] = str(TEMPLATE_ROOT)
