"""Real project names bake with the slug they suggest, and read back exactly as typed everywhere.

The display name, the description and the author are typed by people: accents, apostrophes,
`&`, double quotes and backslashes included. Each file they land in is parsed back (TOML,
Python, Markdown) and must give the very text that was typed.
"""

import ast
import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from answer_validation import SLUG_MAX_LENGTH, package_name, slug_problem
from tests.baking import BakedProject
from tests.test_toggles import ruff_clean

REAL_NAMES = [
    pytest.param("Café Münster API", "cafe_munster_api", id="accents"),
    pytest.param("O'Brien's Bakery & Co", "obriens_bakery_co", id="apostrophes"),
    pytest.param("my.service-api v2", "my_service_api_v2", id="punctuation"),
    pytest.param("Ärger & Öl — Zählwerk", "arger_ol_zahlwerk", id="umlauts-and-dash"),
    pytest.param('O\'Brien "Quoted" Service & Co', "obrien_quoted_service_co", id="quotes"),
]
# Typed alongside each name: every character that means something in TOML, Python or Markdown.
DESCRIPTION = 'Bakes "bread" & cakes: *fresh* at 7\\8 o\'clock, see [menu](x) <b>#1</b> &amp;'
AUTHOR = 'Seán "Jr" O\\Brien'


def rendered_text(markdown: str, tag: str) -> str:
    """The text of the first `tag` block (h1, p) once the Markdown is rendered."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    opening = next(index for index, token in enumerate(tokens) if token.tag == tag)
    inline = tokens[opening + 1]
    assert inline.children is not None
    return "".join(child.content for child in inline.children if child.type == "text")


def python_title(main: Path) -> object:
    """The `title=` literal passed to FastAPI(...) in main.py, evaluated."""
    for node in ast.walk(ast.parse(main.read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "title":
            return ast.literal_eval(node.value)
    raise AssertionError("no title= in main.py")


@pytest.mark.parametrize(("name", "slug"), REAL_NAMES)
def test_a_real_name_bakes_with_its_slug_and_reads_back_exactly(
    bake: Callable[..., BakedProject], name: str, slug: str
) -> None:
    project = bake(project_name=name, description=DESCRIPTION, author_name=AUTHOR)

    assert project.path.name == slug
    package = project.path / "src" / slug
    assert package.is_dir()
    pyproject = tomllib.loads((project.path / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == slug
    assert pyproject["project"]["description"] == DESCRIPTION
    assert pyproject["project"]["authors"] == [{"name": AUTHOR, "email": "jane@example.com"}]
    assert python_title(package / "main.py") == name
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    assert docstring == f"The {name} service."
    readme = (project.path / "README.md").read_text(encoding="utf-8")
    assert rendered_text(readme, "h1") == name
    assert rendered_text(readme, "p") == DESCRIPTION
    license_lines = (project.path / "LICENSE").read_text(encoding="utf-8").splitlines()
    assert any(line.endswith(f" {AUTHOR}") for line in license_lines)
    assert project.template_residue() == []
    ruff_clean(project)


@pytest.mark.slow
def test_a_quoted_name_installs_type_checks_and_imports_with_its_title(
    bake: Callable[..., BakedProject],
) -> None:
    name = 'O\'Brien "Quoted" Service & Co \\ Sons'
    project = bake(project_name=name, description=DESCRIPTION, author_name=AUTHOR)
    project.install()
    project.lint()

    shown = project.tool(
        "python",
        "-c",
        "import json, obrien_quoted_service_co_sons as package, obrien_quoted_service_co_sons.main"
        " as main; print(json.dumps([main.app.title, package.__doc__]))",
    )
    assert shown.returncode == 0, shown.explain()
    assert json.loads(shown.output.splitlines()[-1]) == [name, f"The {name} service."]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("2024 Report API", "my_2024_report_api"),
        ("   Spaced   Out   ", "spaced_out"),
        ("Москва Сервис", "moskva_servis"),
        ("Straße & Œuvre", "strasse_oeuvre"),
        ("Inventory Reconciliation and Forecasting Service", "inventory_reconciliation_and"),
        ("supercalifragilisticexpialidocious_and_more", "supercalifragilisticexpialidocio"),
    ],
)
def test_the_derived_slug_is_a_valid_package_name(name: str, slug: str) -> None:
    assert package_name(name) == slug
    assert len(slug) <= SLUG_MAX_LENGTH
    assert slug_problem(slug) is None


def test_a_derived_slug_is_still_checked_like_a_typed_one() -> None:
    assert package_name("Logging") == "logging"
    assert "standard library" in str(slug_problem(package_name("Logging")))
