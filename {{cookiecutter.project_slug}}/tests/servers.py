"""The servers the suite needs: checked once before the first test, and explained when down."""

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# A server that does not answer within this long counts as down: the check must stay quick.
CONNECT_TIMEOUT_SECONDS = 2.0
COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


@dataclass(frozen=True)
class Server:
    name: str
    variable: str  # the environment variable that points the tests at it
    compose_service: str
    debian_package: str
    # How to install it where Debian has no package for it.
    install: str = ""


def masked(url: str) -> str:
    """`url` with its password, if any, replaced by ***."""
    parts = urlsplit(url)
    credentials, at, address = parts.netloc.rpartition("@")
    user, colon, password = credentials.partition(":")
    if not (at and colon and password):
        return url
    return parts._replace(netloc=f"{user}:***@{address}").geturl()


def server_down(server: Server, url: str, error: BaseException) -> str:
    """What to do when `server` does not answer at `url`: one message, before any test runs."""
    if COMPOSE_FILE.exists():
        install = server.install or f"Debian's {server.debian_package} package"
        start = (
            f"Start it with `make services` (docker compose up --detach --wait "
            f"{server.compose_service}), or install {install}."
        )
    else:
        install = server.install or f"sudo apt-get install {server.debian_package}"
        start = f"Install and start it: {install}"
    return (
        f"The tests need {server.name}, and none answers at {masked(url)} ({reason(error)}).\n"
        f"{start}\n"
        f"Or point {server.variable} at a running server."
    )


def server_refused(server: Server, url: str, error: BaseException) -> str:
    """What to do when `server` answers at `url` but refuses the tests' login."""
    return (
        f"The tests need {server.name}, and the one at {masked(url)} refused them "
        f"({reason(error)}).\nCheck the user and password in {server.variable}."
    )


def reason(error: BaseException) -> str:
    return str(error).strip() or type(error).__name__
