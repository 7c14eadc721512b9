"""Jinja filters that write free text (the project name, description, author) into each format.

A person types these answers, so they may hold quotes, backslashes, `&`, `#` or `*`. Each filter
writes the text so that the file's own parser reads back exactly what was typed, and so that the
result is what a formatter would write by hand (`ruff format` leaves the Python untouched).
"""

from __future__ import annotations

import json
import re

from jinja2 import Environment
from jinja2.ext import Extension

# Characters with a meaning in Markdown's inline text, escaped wherever they appear.
MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>#|~])")
# `&` only matters where it starts an entity reference (`&amp;`, `&#38;`).
MARKDOWN_ENTITY = re.compile(r"&(?=#?\w+;)")
# At the start of a line these open a block (list, quote, heading rule, ordered list).
MARKDOWN_BLOCK_START = re.compile(r"^([-+=]|\d+(?=[.)]))")


def python_string(value: str) -> str:
    """`value` as a Python string literal, quoted the way `ruff format` quotes it.

    Double quotes, unless the text holds more double quotes than single ones: then single quotes
    need fewer escapes, and ruff would switch to them.
    """
    quote = "'" if value.count('"') > value.count("'") else '"'
    escaped = value.replace("\\", "\\\\").replace(quote, f"\\{quote}")
    return f"{quote}{escaped}{quote}"


def docstring_text(value: str) -> str:
    """`value` inside a triple-double-quoted docstring: no run of quotes can close it early."""
    return re.sub(r'"(?=")', r'\\"', value.replace("\\", "\\\\"))


def toml_string(value: str) -> str:
    """`value` as a TOML basic string; TOML shares JSON's escapes for quotes and backslashes."""
    return json.dumps(value, ensure_ascii=False)


def markdown_text(value: str) -> str:
    """`value` as Markdown inline text that renders as exactly what was typed.

    Leading and trailing spaces are dropped: Markdown ignores them, or reads four as code.
    """
    escaped = MARKDOWN_ENTITY.sub(r"\\&", MARKDOWN_INLINE.sub(r"\\\1", value.strip()))
    # Only a first character can open a block; for `1.` the escaped `.` is what stops it.
    match = MARKDOWN_BLOCK_START.match(escaped)
    if match is None:
        return escaped
    if match.group(1).isdigit():
        end = match.end()
        return f"{escaped[:end]}\\{escaped[end:]}"
    return f"\\{escaped}"


class TextFilters(Extension):
    """Registers the filters above for the project template."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["python_string"] = python_string
        environment.filters["docstring_text"] = docstring_text
        environment.filters["toml_string"] = toml_string
        environment.filters["markdown_text"] = markdown_text
