"""Every core combination bakes, lints clean and passes its own tests against real servers."""

from collections.abc import Callable

import pytest

from tests.baking import BakedProject, SuiteCounts
from tests.conftest import Stopwatch

CORE_MATRIX = [
    pytest.param({"cache_backend": cache, "database": database}, id=f"{cache}-{database}")
    for cache in ("redis", "memcached", "memory", "dynamodb")
    for database in ("sqlite", "postgresql")
] + [
    pytest.param({"python_version": version}, id=f"default-python{version}")
    for version in ("3.11", "3.13")
]


@pytest.mark.slow
@pytest.mark.usefixtures("services")
@pytest.mark.parametrize("answers", CORE_MATRIX)
def test_baked_project_lints_clean_and_passes_its_own_tests(
    bake: Callable[..., BakedProject],
    record_suite: Callable[[SuiteCounts, float], None],
    answers: dict[str, str],
) -> None:
    with Stopwatch() as stopwatch:
        project = bake(**answers)
        assert project.template_residue() == []
        project.install()
        project.lint()
        counts = project.run_tests()
    record_suite(counts, stopwatch.seconds)

    assert counts.tests > 0
    assert (counts.failures, counts.errors) == (0, 0)
    # A skipped baked test hides a missing server or a missing feature: treat it as a failure.
    assert counts.skipped == 0
