"""A TCP proxy for partition tests: clients connect to it instead of a server; ``cut()``
drops every connection and refuses new ones (a partition), ``heal()`` lets them through again,
on the same port.

    with RedisServer() as server, TcpProxy("127.0.0.1", server.port) as proxy:
        cache = Cache(f"redis://127.0.0.1:{proxy.port}/0")
        proxy.cut()      # the cache cannot reach Redis; Redis itself is fine
        proxy.heal()
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

from cacheplug.testing._setups import Throwaway
from cacheplug.testing.redis_server import free_port

_CHUNK = 65536


class TcpProxy(Throwaway):
    """Forwards connections made to ``host:port`` (a free loopback port by default) to
    ``target_host:target_port``, a thread per direction of each connection. ``with proxy:``
    heals it, and cuts it at the end."""

    def __init__(
        self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def heal(self) -> Self:
        """Accept connections (again)."""
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(self.address)
            listener.listen(128)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def start(self) -> Self:
        return self.heal()

    def cut(self) -> None:
        """Drop every connection and refuse new ones, until :meth:`heal`."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stop(self) -> None:
        self.cut()

    def discard(self) -> None:
        """Nothing left behind: no files."""

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(_CHUNK):
                sink.sendall(chunk)
        except OSError:
            pass
        for sock in (source, sink):  # one side ended: end the other
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
