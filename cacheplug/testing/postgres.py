"""Start a throwaway PostgreSQL on a free loopback port, ready for logical decoding (tests of
change data capture, benchmarks).

``with PostgresServer() as server: psycopg.connect(server.dsn)``. The cluster lives in a
temporary directory (data, socket, log), runs as the ``postgres`` OS user when started by
root (PostgreSQL refuses to run as root) and as the current user otherwise, with
``wal_level=logical``, replication slots and WAL senders, and ``fsync=off`` (a crash of the
machine may lose it: it is thrown away anyway). No Python driver is needed to start it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cacheplug.testing._setups import OneProcess, wait_until
from cacheplug.testing.redis_server import free_port

_BINARIES = ("initdb", "postgres", "pg_isready")


def postgres_bindir() -> Path:
    """Where ``initdb`` and ``postgres`` are: ``$PG_BINDIR``, ``pg_config --bindir``, the
    newest ``/usr/lib/postgresql/*/bin`` (Debian, Ubuntu), or ``PATH``."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=_version_of, reverse=True)]
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if all((bindir / name).is_file() for name in _BINARIES):
            return bindir
    raise RuntimeError(
        "PostgreSQL's server binaries (initdb, postgres, pg_isready) were not found: install "
        "them (Debian: apt-get install -y postgresql) or set PG_BINDIR to their directory"
    )


def _version_of(path: str) -> tuple[int, ...]:
    number = Path(path).parent.name
    return tuple(int(part) for part in number.split(".") if part.isdigit())


class PostgresServer(OneProcess):
    """A PostgreSQL cluster of our own: loopback only, trust authentication for ``postgres``.

    ``settings`` adds or overrides server settings (``{"max_slot_wal_keep_size": "64MB"}``).
    ``kill()`` crashes it (SIGKILL to the postmaster and its backends); ``start()`` brings it
    back on the same port with its data (crash recovery). Raises ``RuntimeError`` when the
    binaries are missing or the server does not start.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        settings: dict[str, str] | None = None,
        bindir: str | Path | None = None,
    ) -> None:
        self.bindir = Path(bindir) if bindir is not None else postgres_bindir()
        self.port = port or free_port()
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "wal_level": "logical",
            "max_replication_slots": "20",
            "max_wal_senders": "20",
            "fsync": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            "max_connections": "50",
            **(settings or {}),
        }
        self._dir = Path(tempfile.mkdtemp(prefix="cacheplug-postgres-"))
        self._owner: dict[str, Any] = {}
        if os.geteuid() == 0:  # initdb and postgres refuse root: run them as postgres
            user = pwd.getpwnam("postgres")
            os.chown(self._dir, user.pw_uid, user.pw_gid)
            self._owner = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        self._process: subprocess.Popen[bytes] | None = None
        self._initialised = False

    @property
    def data_dir(self) -> Path:
        return self._dir / "data"

    @property
    def dsn(self) -> str:
        """A libpq key/value connection string for the ``postgres`` database."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def fresh_database(self, name: str) -> str:
        """An empty database ``name`` (dropped first if it is there); its URL. Needs psycopg
        (the ``postgres`` extra)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def start(self, timeout: float = 30.0) -> PostgresServer:
        """Create the cluster (the first time), start the server and wait until it accepts
        connections."""
        if not self._initialised:
            self._initdb()
        args = [str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        args += ["-c", f"unix_socket_directories={self._dir}"]
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        with open(self._dir / "server.log", "ab") as log:
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its backends share its process group: kill() ends all
                **self._owner,
            )
        process = self._process

        def accepts() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with code {process.returncode}:\n{self.log_tail()}"
                )
            return self.ready()

        if wait_until(accepts, timeout, 0.05):
            return self
        self.stop()
        raise RuntimeError(
            f"postgres did not accept connections on port {self.port} in {timeout} s"
        )

    def _initdb(self) -> None:
        result = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            **self._owner,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stderr}")
        self._initialised = True

    def ready(self) -> bool:
        """True when the server accepts connections (``pg_isready``)."""
        result = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return result.returncode == 0

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log."""
        try:
            text = (self._dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends (a crash: the next start recovers)."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._process = None

    def stop(self) -> None:
        """Stop the server with a fast shutdown (SIGINT; SIGKILL after 10 s). It keeps its
        port and data, so ``start()`` brings it back."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if process is not None:  # a backend left by a killed postmaster
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        self._process = None

    def discard(self) -> None:
        """Remove the cluster's directory (stopped)."""
        shutil.rmtree(self._dir, ignore_errors=True)
