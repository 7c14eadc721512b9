"""Redis and PostgreSQL servers of a test's own, on free loopback ports, to stop and restart.

PostgreSQL refuses to run as root, so when the tests run as root its cluster belongs to the
`postgres` system user and its commands run as that user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, open_: bool, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if open_:
                    return
        except OSError:
            if not open_:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not {'open' if open_ else 'close'} in {seconds} s")


def has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# A cluster node also listens on its port + 10000 (the cluster bus), so its port comes from
# below the OS's ephemeral range (32768 and up on Linux), with the bus port free as well.
CLUSTER_PORTS = range(20000, 30000)


def free_cluster_port(taken: set[int]) -> int:
    chooser = random.Random()  # spreading ports between concurrent runs, not a secret
    for _ in range(1000):
        port = chooser.choice(CLUSTER_PORTS)
        if {port, port + 10000} & taken:
            continue
        if port_is_free(port) and port_is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class RedisServer:
    """redis-server in the foreground. Nothing persisted unless `appendonly`: a restart starts
    empty; with it, a restart (same port, same directory) reloads its append-only file.

    With `cluster_directory`, a Redis Cluster node keeping its node table there (see
    RedisCluster)."""

    def __init__(
        self,
        *,
        appendonly: bool = False,
        replica_of: int | None = None,
        port: int | None = None,
        cluster_directory: Path | None = None,
    ) -> None:
        self.port = free_port() if port is None else port
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.appendonly = appendonly
        self.replica_of = replica_of
        self.cluster_directory = cluster_directory
        # A directory of its own, always: a master writes dump.rdb to sync its replicas, and a
        # dump.rdb in the working directory would be loaded by the next server started there.
        self.directory = cluster_directory or Path(tempfile.mkdtemp(prefix="test-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.directory.mkdir(parents=True, exist_ok=True)
        command += ["--dir", str(self.directory)]
        command += ["--appendonly", "yes" if self.appendonly else "no"]
        if self.replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        if self.cluster_directory is not None:
            command += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(self.cluster_directory / f"nodes-{self.port}.conf"),
                # Short, so a failover takes seconds; not so short that a loaded machine
                # makes a slow node look dead.
                "--cluster-node-timeout",
                str(RedisCluster.NODE_TIMEOUT_MS),
            ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(self.port, open_=True)

    @property
    def running(self) -> bool:
        return self._process is not None

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers, as in a stall or a partition."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def crash(self) -> None:
        """SIGKILL: gone at once, as a failed host; a replica is then promoted in its place."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=START_SECONDS)
            self._process = None

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def cli(self, *args: str) -> str:
        return subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()

    def remove(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown (with `appendonly`, the file is flushed first)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)  # a stopped process would not exit
            self._process.terminate()
            self._process.wait(timeout=START_SECONDS)
            self._process = None
        wait_for_port(self.port, open_=False)
        if not self.appendonly and self.cluster_directory is None:
            self.remove()  # nothing in it is needed again: a restart starts empty

    def client_names(self) -> list[str]:
        output = subprocess.run(
            ["redis-cli", "-p", str(self.port), "client", "list"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        return [
            field.removeprefix("name=")
            for line in output.splitlines()
            for field in line.split()
            if field.startswith("name=")
        ]


class RedisCluster:
    """A Redis Cluster of `masters` masters with one replica each, on free port pairs."""

    NODE_TIMEOUT_MS = 2000

    def __init__(self, masters: int = 3) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="test-redis-cluster-"))
        taken: set[int] = set()
        self.nodes: list[RedisServer] = []
        for _ in range(masters * 2):
            port = free_cluster_port(taken)
            taken |= {port, port + 10000}
            self.nodes.append(RedisServer(port=port, cluster_directory=self.directory / str(port)))
        self.url = self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        options = ["--cluster-replicas", "1", "--cluster-yes"]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, *options],
            capture_output=True,
            text=True,
            check=True,
            timeout=START_SECONDS * 2,
        )
        self.wait_until_healthy()

    def node(self, port: int) -> RedisServer:
        return next(node for node in self.nodes if node.port == port)

    def masters(self) -> list[RedisServer]:
        """The nodes that serve slots now, as the cluster's node table says."""
        ports = []
        for node in self.nodes:
            if node.running:
                for line in node.cli("CLUSTER", "NODES").splitlines():
                    _, address, flags, *rest = line.split()
                    if "master" in flags.split(",") and "fail" not in flags and len(rest) > 5:
                        ports.append(int(address.split("@")[0].rpartition(":")[2]))
                break
        return [self.node(port) for port in sorted(set(ports))]

    def healthy(self) -> bool:
        """Every running node sees all slots served (`cluster_state:ok`), with as many masters
        as at the start, each with a replica attached."""
        running = [node for node in self.nodes if node.running]
        for node in running:
            if "cluster_state:ok" not in node.cli("CLUSTER", "INFO"):
                return False
        return len(running) == len(self.nodes) and all(
            "connected_slaves:1" in master.cli("INFO", "replication") for master in self.masters()
        )

    def wait_until_healthy(self, seconds: float = START_SECONDS * 2) -> None:
        deadline = time.monotonic() + seconds
        while not self.healthy():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster was not healthy within {seconds} s")
            time.sleep(0.2)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class MemcachedServer:
    """memcached in the foreground on a free port (as an unprivileged user when run as root)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"memcached://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-m", "64"]
        if os.geteuid() == 0:
            # memcached refuses to run as root; Debian's package creates the memcache user.
            command += ["-u", "memcache" if has_user("memcache") else "nobody"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(self.port, open_=True)

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)  # a stopped process would not exit
            self._process.terminate()
            self._process.wait(timeout=START_SECONDS)
            self._process = None


class HangingProxy:
    """A TCP proxy on a free port to a loopback server. While hung it forwards nothing either way
    and its connections stay open: one host cut off from the server, as in a partition, while
    everyone else still reaches it."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.hung = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        serve = asyncio.start_server(self._connect, "127.0.0.1", self.port)
        asyncio.run_coroutine_threadsafe(serve, self._loop).result(timeout=START_SECONDS)
        wait_for_port(self.port, open_=True)

    def hang(self) -> None:
        self.hung.set()

    def retarget(self, port: int) -> None:
        """New connections go to `port`, as a failover's new address (a Sentinel or a DNS
        name) sends clients to the promoted replica."""
        self.target_port = port

    def heal(self) -> None:
        self.hung.clear()

    def close(self) -> None:
        self.hung.clear()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=START_SECONDS)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, upstream[1]), self._pipe(upstream[0], writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                while self.hung.is_set():
                    await asyncio.sleep(0.01)
                writer.write(data)
                await writer.drain()
        writer.close()


class PostgresServer:
    """A throwaway PostgreSQL cluster (trust auth, fsync off) in a temporary directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="test-pg-"))
        self.data = self.directory / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    # Trust authentication ignores it, so tests can check it never leaks into logs or responses.
    PASSWORD = "pg-password-that-must-not-leak"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres:{self.PASSWORD}@127.0.0.1:{self.port}/{database}"

    def _command(self, *command: str) -> list[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        return [*prefix, *command]

    def _psql(self, database: str, statement: str) -> list[str]:
        return [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-At",
            "-c",
            statement,
        ]

    def _run(self, *command: str) -> str:
        result = subprocess.run(
            self._command(*command), capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.directory / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def sql(self, statement: str, database: str = "postgres") -> str:
        return self._run(*self._psql(database, statement)).strip()

    def hold(self, statement: str, database: str, seconds: float) -> subprocess.Popen[bytes]:
        """Run `statement` (a LOCK, say) in a transaction that stays open `seconds` in the
        background; its session is named `holder`, for `release`."""
        transaction = f"BEGIN; {statement}; SELECT pg_sleep({seconds}); ROLLBACK"
        return subprocess.Popen(
            self._command(*self._psql(database, transaction)),
            env={**os.environ, "PGAPPNAME": "holder"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def release(self, holder: subprocess.Popen[bytes]) -> None:
        """End `hold`'s transaction now: its locks go with its session."""
        holders = "SELECT pid FROM pg_stat_activity WHERE application_name = 'holder'"
        self.sql(f"SELECT pg_terminate_backend(pid) FROM ({holders}) AS holders")
        holder.wait(timeout=START_SECONDS)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
