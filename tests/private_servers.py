"""Private instances of the real servers, for the tests that restart them: a PostgreSQL cluster and a
RabbitMQ node of their own, on free ports in a temporary folder, so that restarting them never touches
the machine's shared services. Each is missing-aware: unavailable() names the server that cannot run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import unavailable

POSTGRES_BIN = Path(os.environ.get("TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
BOOT_SECONDS = 120  # a RabbitMQ node boots in about 16 s on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _run(command: list[str], what: str, **options) -> None:
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=BOOT_SECONDS, **options)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}")


def _folder(name: str) -> Path:
    """A new temporary folder that the server's own user can reach (pytest's are private to us)."""
    folder = Path(tempfile.mkdtemp(prefix=f"enricher-{name}-"))
    folder.chmod(0o755)
    return folder


def _as_user(user: str) -> list[str]:
    """Run as USER when we are root (initdb and the RabbitMQ scripts refuse or switch), else as ourselves."""
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary folder (trust authentication, no fsync), on a free port."""

    def __init__(self):
        if not (POSTGRES_BIN / "pg_ctl").exists():
            unavailable(f"PostgreSQL's server binaries are not in {POSTGRES_BIN} (set TEST_POSTGRES_BIN): "
                        "the PostgreSQL restart test runs a server of its own")
        self.folder, self.port = _folder("postgres"), free_port()
        self.data = self.folder / "data"
        self.user = "postgres" if os.geteuid() == 0 else ""
        if self.user:
            shutil.chown(self.folder, self.user)
        _run([*_as_user(self.user), str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-A", "trust",
              "-U", "postgres", "--no-sync"], "initdb")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._ctl("start")

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run([*_as_user(self.user), str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"),
              "-w", "-o", options, action, *extra], f"pg_ctl {action}")

    def database(self, name: str) -> str:
        """The URL of a new database NAME on this server."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url.rpartition("/")[0] + f"/{name}"

    def restart(self, down: float = 0.0, mode: str = "fast") -> None:
        """Stop the server ("fast" ends every session, as an operator's restart does; "immediate"
        crashes), leave it down DOWN seconds, and start it again."""
        self.stop_server(mode)
        time.sleep(down)
        self.start_server()

    def stop_server(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode)

    def start_server(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRabbitmq:
    """A RabbitMQ node of its own (node name, AMQP and distribution ports, data and logs in a temporary
    folder)."""

    def __init__(self):
        if not shutil.which("rabbitmq-server") or not shutil.which("rabbitmqctl"):
            unavailable("rabbitmq-server is not installed: the broker restart test runs a RabbitMQ node of its own")
        self.port = free_port()
        self.node = f"enricher_faults_{self.port}@localhost"
        self.folder = folder = _folder("rabbitmq")
        (folder / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:  # the scripts switch to the rabbitmq user, who must own the folder
            for path in (folder, folder / "enabled_plugins"):
                shutil.chown(path, "rabbitmq")
        self.env = {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.port),
                    "RABBITMQ_DIST_PORT": str(free_port()), "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(folder / "log"), "RABBITMQ_CONFIG_FILE": str(folder / "none"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins")}
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process = subprocess.Popen(["rabbitmq-server"], env=self.env, stdout=(folder / "out.txt").open("w"),
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + BOOT_SECONDS
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                unavailable(f"a private RabbitMQ node did not start: {(folder / 'out.txt').read_text()[-1000:]}")
            time.sleep(0.2)

    def _ctl(self, *args: str) -> None:
        _run(["rabbitmqctl", "-n", self.node, *args], f"rabbitmqctl {args[0]}", env=self.env)

    def restart(self) -> None:
        """Stop the broker application (every connection drops) and start it again on the same node."""
        self._ctl("stop_app")
        self._ctl("start_app")

    def stop(self) -> None:
        try:
            self._ctl("stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            self.process.kill()
        self.process.wait(30)
        shutil.rmtree(self.folder, ignore_errors=True)
