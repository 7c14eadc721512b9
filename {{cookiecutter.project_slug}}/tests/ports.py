"""Addresses where nothing listens, for tests of unreachable dependencies."""

import socket


def unused_tcp_port() -> int:
    """A loopback port that was free a moment ago (the OS does not hand it out again at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
