"""Prune the files of options that were not chosen, pick the license, write a private .env.

Runs inside the generated project. No network, no package installs: generation stays offline.
"""

import secrets
import shutil
from pathlib import Path

PACKAGE = Path("src") / "{{cookiecutter.project_slug}}"
TESTS = Path("tests")

# Files that belong to one choice of an option; every path here must exist in the template
# (tests/test_post_gen_manifest.py checks that, so this list cannot drift from the real files).
OPTION_FILES: dict[str, dict[str, list[Path]]] = {
    "cache_backend": {
        backend: [
            PACKAGE / "cache" / f"{backend}.py",
            TESTS / "cache" / f"{backend}_service.py",
            TESTS / "cache" / f"test_{backend}.py",
        ]
        for backend in ("redis", "memcached", "memory")
    },
    "database": {
        database: [
            PACKAGE / "db" / f"{database}.py",
            TESTS / "db" / f"{database}_database.py",
            TESTS / "db" / f"test_{database}.py",
        ]
        for database in ("sqlite", "postgresql")
    },
    "ci": {
        # .github holds the workflow and Dependabot's configuration; GitLab has no Dependabot,
        # so its projects get Renovate's configuration instead.
        "github": [Path(".github")],
        "gitlab": [Path(".gitlab-ci.yml"), Path("renovate.json")],
        "none": [],
    },
    "docker": {
        "True": [Path("Dockerfile"), Path(".dockerignore"), Path("docker-compose.yml")],
        "False": [],
    },
}

# Files that serve several choices of an option: kept only when one of those is chosen.
SHARED_OPTION_FILES: dict[Path, tuple[str, set[str]]] = {
    TESTS / "cache" / "outage_proxy.py": ("cache_backend", {"redis", "memcached"}),
    TESTS / "cache" / "test_cache_server.py": ("cache_backend", {"redis", "memcached"}),
    # Only Redis has a channel (pub/sub) that keeps workers' local tiers coherent.
    TESTS / "cache" / "test_local_cache.py": ("cache_backend", {"redis"}),
}

CHOSEN = {
    "cache_backend": "{{ cookiecutter.cache_backend }}",
    "database": "{{ cookiecutter.database }}",
    "ci": "{{ cookiecutter.ci }}",
    "docker": "{{ cookiecutter.docker }}",
}
LICENSE = "{{ cookiecutter.license }}"
LICENSES_DIR = Path("licenses")


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def remove_unchosen_option_files() -> None:
    for option, files_by_choice in OPTION_FILES.items():
        for choice, paths in files_by_choice.items():
            if choice != CHOSEN[option]:
                for path in paths:
                    remove(path)
    for path, (option, choices) in SHARED_OPTION_FILES.items():
        if CHOSEN[option] not in choices:
            remove(path)


def install_license() -> None:
    """Keep the chosen license text as LICENSE; a proprietary project gets no LICENSE file."""
    chosen = LICENSES_DIR / f"{LICENSE}.txt"
    if chosen.exists():
        chosen.rename("LICENSE")
    shutil.rmtree(LICENSES_DIR)


def write_env_file() -> None:
    """A fresh SECRET_KEY per project; .env is git-ignored, so it never reaches a commit."""
    env_file = Path(".env")
    env_file.write_text(f"SECRET_KEY={secrets.token_urlsafe(48)}\n", encoding="utf-8")
    env_file.chmod(0o600)


def main() -> None:
    remove_unchosen_option_files()
    install_license()
    write_env_file()


if __name__ == "__main__":
    main()
