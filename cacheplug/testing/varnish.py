"""Start a throwaway Varnish (``varnishd``) on a free loopback port, in front of a backend of
the test's own (tests of the edge tier: pages cached by Varnish, tagged with keys, purged by
key).

``with VarnishServer(app_port, vcl="example_project/edge/cacheplug.vcl") as varnish:
requests.get(varnish.url + "/page")``. The VCL is loaded from a copy whose ``backend default``
points at ``backend_host:backend_port``, so one VCL file serves every test. Storage is 32 MB
of memory: a stopped Varnish forgets everything, and ``start()`` brings back an empty cache on
the same port (what a restarted edge looks like to the application).

Run by root, ``varnishd`` drops its privileges to the ``varnish`` and ``vcache`` users the
Debian package creates (its default ``unix`` jail), so the files it reads live in a directory
that every user may read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cacheplug.testing._setups import OneProcess, wait_until
from cacheplug.testing.redis_server import free_port

_MISSING = (
    "{name} is not on PATH: install Varnish (Debian: apt-get install -y varnish "
    "varnish-modules) — the README's test command does this for you"
)
# The backend the fixture rewrites: `backend default { ... }` up to its closing brace.
_BACKEND = re.compile(r"backend\s+default\s*\{[^}]*\}")
_HOST = re.compile(r'\.host\s*=\s*"[^"]*"\s*;')
_PORT = re.compile(r'\.port\s*=\s*"[^"]*"\s*;')


def _binary(name: str) -> str:
    """The path of a Varnish program (``/usr/sbin`` is not on every user's ``PATH``)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(_MISSING.format(name=name))
    return found


def point_backend(vcl: str, host: str, port: int) -> str:
    """The VCL text with ``backend default``'s ``.host`` and ``.port`` replaced: the one place
    the shipped VCLs leave to whoever runs them. Raises ``ValueError`` when the VCL has no
    ``backend default`` with both lines (a silently unchanged backend would send every test
    request to whatever listens on the VCL's own port)."""
    match = _BACKEND.search(vcl)
    if match is None:
        raise ValueError("the VCL has no `backend default { ... }` to point at the backend")
    block = match.group(0)
    if _HOST.search(block) is None or _PORT.search(block) is None:
        raise ValueError('`backend default` needs `.host = "...";` and `.port = "...";` lines')
    block = _HOST.sub(lambda _: f'.host = "{host}";', block, count=1)
    block = _PORT.sub(lambda _: f'.port = "{port}";', block, count=1)
    return vcl[: match.start()] + block + vcl[match.end() :]


def flatten_counters(stats: dict[str, Any]) -> dict[str, int]:
    """``varnishstat -j`` output as ``{"MAIN.cache_hit": 3, ...}``. Varnish 7 nests the
    counters under ``"counters"`` (beside ``"version"``); Varnish 6 puts them at the top level
    beside ``"timestamp"``."""
    counters = stats.get("counters", stats)
    return {
        name: int(entry["value"])
        for name, entry in counters.items()
        if isinstance(entry, dict) and "value" in entry
    }


class VarnishServer(OneProcess):
    """A ``varnishd`` of our own: loopback only, in-memory storage, a VCL aimed at a backend.

    ``vcl`` is the VCL file to load (the files beside it are copied too, so that its
    ``include "./..."`` lines work); ``backend_host`` and ``backend_port`` replace its
    ``backend default``. ``counters()`` reads ``varnishstat``. Raises ``RuntimeError`` when
    Varnish is missing or does not start (with its output, a VCL compile error say).
    """

    def __init__(
        self,
        backend_port: int,
        *,
        vcl: str | Path,
        backend_host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.varnishd = _binary("varnishd")
        self.varnishadm = _binary("varnishadm")
        self.varnishstat = _binary("varnishstat")
        self.vcl_source = Path(vcl).resolve()
        self.backend_host = backend_host
        self.backend_port = backend_port
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="cacheplug-varnish-"))
        self._dir.chmod(0o755)  # varnishd run by root compiles the VCL as the varnish user
        self._vcl = self._write_vcl()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, no trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def workdir(self) -> Path:
        """varnishd's ``-n`` directory: what ``varnishadm -n`` and ``varnishstat -n`` take."""
        return self._dir / "work"

    @property
    def command(self) -> list[str]:
        """The ``varnishd`` command line ``start()`` runs (``-F``: in the foreground, so that
        this object holds the manager process and ends it)."""
        return [
            self.varnishd,
            "-F",
            "-f",
            str(self._vcl),
            "-a",
            f"127.0.0.1:{self.port}",
            "-n",
            str(self.workdir),
            "-s",
            "malloc,32m",
        ]

    def _write_vcl(self) -> Path:
        for sibling in self.vcl_source.parent.glob("*.vcl"):
            if sibling != self.vcl_source:
                shutil.copyfile(sibling, self._dir / sibling.name)
        target = self._dir / self.vcl_source.name
        text = point_backend(self.vcl_source.read_text(), self.backend_host, self.backend_port)
        target.write_text(text)
        return target

    def start(self, timeout: float = 30.0) -> VarnishServer:
        """Start varnishd and wait until its child (the one serving requests) runs."""
        with open(self._dir / "varnishd.log", "ab") as log:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its child shares its process group: stop() ends both
            )
        process = self._process

        def serving() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"varnishd exited with code {process.returncode}:\n{self.log_tail()}"
                )
            return self.ready()

        if wait_until(serving, timeout, 0.05):
            return self
        self.stop()
        raise RuntimeError(f"varnishd did not start on port {self.port} in {timeout} s")

    def ready(self) -> bool:
        """True when the manager says its child is running (``varnishadm status``): the
        listening socket exists earlier, before the child can answer on it."""
        result = self.admin("status")
        return result.returncode == 0 and "running" in result.stdout

    def admin(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run a ``varnishadm`` command (``admin("ban.list")``) against this server."""
        return subprocess.run(
            [self.varnishadm, "-n", str(self.workdir), "-t", "5", *command],
            capture_output=True,
            text=True,
        )

    def counters(self) -> dict[str, int]:
        """Every ``varnishstat`` counter by name: ``MAIN.cache_hit``, ``MAIN.cache_miss``,
        ``MAIN.backend_req``, ``MAIN.n_object``... Workers add their counts to these now and
        then, not on every request: poll for the value a test waits for."""
        result = subprocess.run(
            [self.varnishstat, "-n", str(self.workdir), "-j", "-1"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"varnishstat failed ({result.returncode}): {result.stderr}")
        stats: dict[str, Any] = json.loads(result.stdout)
        return flatten_counters(stats)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines varnishd printed (its VCL compile errors among them)."""
        try:
            text = (self._dir / "varnishd.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop varnishd (SIGTERM to the manager, which stops its child; SIGKILL to both after
        10 s). The cache is gone; the port is kept, so ``start()`` serves there again."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._process = None

    def discard(self) -> None:
        """Remove the copied VCL and the work directory (stopped)."""
        shutil.rmtree(self._dir, ignore_errors=True)
