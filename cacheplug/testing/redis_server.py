"""Start a throwaway ``redis-server`` on a free loopback port (tests, benchmarks, demos)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from cacheplug.testing._setups import OneProcess, stop_processes, wait_until


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer(OneProcess):
    """A ``redis-server`` process of our own: no persistence, loopback only.

    ``with RedisServer() as server: Cache(server.url)``. Raises ``RuntimeError`` when the
    binary is missing (install it, e.g. ``apt-get install redis-server``) or does not start.
    """

    def __init__(self, port: int | None = None, *, extra_args: tuple[str, ...] = ()) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not on PATH: install it (Debian: apt-get install -y "
                "redis-server) — the README's test command does this for you"
            )
        self.binary = binary
        self.port = port or free_port()
        self.extra_args = extra_args
        self._dir = Path(tempfile.mkdtemp(prefix="cacheplug-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
                "--protected-mode",
                "no",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = self._process

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {process.returncode}")
            return self.ping()

        if wait_until(answers, timeout, 0.02):
            return self
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout} s")

    def ping(self) -> bool:
        """True when the server answers PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the server (a crash: nothing is flushed, clients see the socket die)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def stop(self) -> None:
        """Stop the server (it keeps its port number, so ``start()`` brings it back there)."""
        if self._process is not None:
            stop_processes([self._process])
        self._process = None

    def discard(self) -> None:
        """Remove the server's directory (stopped)."""
        shutil.rmtree(self._dir, ignore_errors=True)
