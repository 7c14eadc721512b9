"""Generated code reads as written by hand once Jinja has removed the unchosen options' lines."""

from collections.abc import Callable

import pytest

from tests.baking import BakedProject


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_driver_comment_sits_above_the_driver(
    bake: Callable[..., BakedProject], database: str
) -> None:
    project = bake(database=database)
    lines = (project.path / "src" / "orders_service" / "settings.py").read_text().splitlines()

    comment = lines.index("# The async driver this project installs; DATABASE_URL must use it.")
    assert lines[comment + 1].startswith("DATABASE_DRIVER = ")
