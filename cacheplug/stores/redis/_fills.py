"""Announcements of fills over Redis pub/sub, fed into a :class:`FillListener`.

One daemon thread per store holds a subscription to the store's announce channel and wakes
local waiters when a key is announced (a message starting with ``!`` is an invalidation, also
handed to the invalidation subscribers). If the subscription drops, every waiter is woken (an
announcement may have been missed; they re-check the store) and the thread resubscribes with
backoff. While it is down, ``live`` is False and callers wait in short slices instead.

A thread that runs pure Python without pause (L1 hits in a loop) keeps the GIL for the
interpreter's whole switch interval (5 ms) whenever the bus thread wants it, and the bus thread
wants it two or three times per message (after its wait, after each socket read): an
invalidation took 10-20 ms to reach such a process's L1. So reading the subscription is
split from telling the subscribers:

- **Receiving** (under ``_receive_lock``, by whichever thread gets there): read every message
  there is, wake the key's waiters, call the ``on_change`` subscribers (the L1 drops its copy)
  and queue the invalidation for the next step. A reading thread does it from
  :meth:`RedisFillListener.catch_up` when the socket is readable, or waits for the lock (GIL
  released, at most ``_CATCH_UP_WAIT``) while the bus thread holds it: that thread may have
  read what the socket had, and not handled it yet.
- **Telling** the ``on_invalidation`` subscribers, in order, on the bus thread only, as they
  are promised; a reading thread that queued something wakes the bus thread (a socket pair).

The bus thread waits for its socket with ``poll`` (without reading it). A reading thread never
reads a socket that has hung up: a read may then reconnect, which is the bus thread's job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import redis

from cacheplug._redact import redact
from cacheplug.stores.fills import FillListener
from cacheplug.stores.redis._scripts import CLUSTER_ERRORS as _UNREACHABLE
from cacheplug.stores.redis._untyped import pubsub as open_pubsub

logger = logging.getLogger("cacheplug")

_SUBSCRIBE_WAIT = 1.0
_POLL_SECONDS = 0.5
_MAX_BACKOFF = 2.0
# How long a reading thread waits for the bus thread to finish receiving: well under a
# millisecond once that thread runs (no subscriber of its own runs then).
_CATCH_UP_WAIT = 0.002
_HUNG_UP = (
    select.POLLHUP | select.POLLERR | select.POLLNVAL | getattr(select, "POLLRDHUP", 0)
    if hasattr(select, "poll")
    else 0
)


class RedisFillListener(FillListener):
    """Subscribes to ``channel`` on ``client``'s server from a background thread."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        super().__init__()
        self._client = client
        self.channel = channel
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._pid = os.getpid()
        self._receiving()

    def _receiving(self) -> None:
        # Shared by the bus thread and the reading threads that catch up (see the module
        # docstring): the subscription, the lock on reading it, what is left to tell, and
        # the socket pair on which a reading thread wakes the bus thread to tell it.
        self._pubsub: Any = None
        self._blind = False  # the bus thread waits inside redis-py, holding the lock
        self._thread_id = 0
        self._receive_lock = threading.Lock()
        self._to_tell: deque[str | None] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    @property
    def live(self) -> bool:
        return self._pid == os.getpid() and self._subscribed.is_set()

    def start(self) -> None:
        if self._pid != os.getpid():
            self._after_fork()
        if self._thread is not None:
            return  # running, or reconnecting: callers wait in short slices meanwhile
        with self._start_lock:
            if self._thread is not None or self._stopping.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="cacheplug-fills", daemon=True)
            self._thread.start()
        # The first waiter must not miss an announcement made before the subscription is up.
        self._subscribed.wait(_SUBSCRIBE_WAIT)

    def _after_fork(self) -> None:
        # The subscriber thread stayed in the parent: start afresh (waiters registered in the
        # parent are not ours to wake).
        self._lock = threading.Lock()
        self._waiters = {}
        self._start_lock = threading.Lock()
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._thread = None
        self._pid = os.getpid()
        for end in (self._wake_r, self._wake_w):  # this process's copies of the parent's
            end.close()
        self._receiving()
        # Whatever was announced between the fork and now was missed: local copies the
        # parent made (an L1) are dropped before anything is served again.
        self._notify(None)

    def stop(self) -> None:
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # Wake the subscriber from its poll rather than wait it out.
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
            thread.join(timeout=2 * _POLL_SECONDS + 1)
        if thread is None or not thread.is_alive():
            for end in (self._wake_r, self._wake_w):
                end.close()
        super().stop()

    def catch_up(self) -> None:
        pubsub = self._pubsub
        if pubsub is None or self._blind or threading.get_ident() == self._thread_id:
            return
        if self._pid != os.getpid():
            return  # the parent's subscription: never read it from a forked child
        if not self._receive_lock.locked():
            sock = _socket(pubsub)
            if sock is None or _ready(sock, 0.0) is not True:
                return  # nothing there, or hung up (left to the bus thread)
        # The bus thread holds the lock for reading and receiving only, never for long.
        if not self._receive_lock.acquire(timeout=_CATCH_UP_WAIT):
            return
        try:
            if self._pubsub is not pubsub:
                return  # resubscribed meanwhile
            sock = _socket(pubsub)
            if sock is None or _ready(sock, 0.0) is not True:
                return  # the bus thread received it all
            received = self._receive(pubsub, 0.0)
        except Exception:  # a hit must not fail for it; the bus thread meets it too
            return
        finally:
            self._receive_lock.release()
        if received:
            with contextlib.suppress(OSError):  # full: the bus thread is woken already
                self._wake_w.send(b"x")

    def _run(self) -> None:
        self._thread_id = threading.get_ident()
        backoff = 0.05
        while not self._stopping.is_set():
            pubsub: Any = None
            try:
                pubsub = open_pubsub(self._client)
                pubsub.subscribe(self.channel)
                self._pubsub = pubsub
                while not self._stopping.is_set():
                    if self._listen(pubsub):
                        backoff = 0.05
            except (redis.RedisError, OSError) as exc:
                if self._subscribed.is_set():
                    logger.warning("cacheplug: lost the fill subscription (%s); resubscribing", exc)
                self._subscribed.clear()
                self._tell_all()
                self.wake_all()
                self._stopping.wait(backoff)
                backoff = min(_MAX_BACKOFF, backoff * 2)
            finally:
                with self._receive_lock:  # not while a reading thread reads it
                    self._pubsub = None
                    if pubsub is not None:
                        with contextlib.suppress(redis.RedisError, OSError):
                            pubsub.close()
        self._subscribed.clear()
        self._tell_all()

    def _listen(self, pubsub: Any) -> bool:
        """Wait (at most ``_POLL_SECONDS``) for messages, receive every one there is, tell
        the subscribers what is queued; True while the subscription is confirmed."""
        sock = _socket(pubsub)
        if sock is None:  # a connection we cannot see into: let redis-py wait
            self._blind = True  # reading threads do not wait for the lock meanwhile
            try:
                with self._receive_lock:
                    self._receive(pubsub, _POLL_SECONDS)
            finally:
                self._blind = False
        else:
            if not self._to_tell:
                _ready(sock, _POLL_SECONDS, self._wake_r)  # without reading
            with contextlib.suppress(OSError):  # empty: nobody woke us
                self._wake_r.recv(4096)
            with self._receive_lock:
                self._receive(pubsub, 0.0)
        self._tell_all()
        return self._subscribed.is_set()

    def _receive(self, pubsub: Any, timeout: float) -> bool:
        """Receive every message there is (waiting ``timeout`` for the first); True if
        there was any. The caller holds ``_receive_lock``."""
        message = pubsub.get_message(timeout=timeout)
        received = message is not None
        while message is not None:
            if message["type"] == "message":
                data = message["data"]
                key = data.decode() if isinstance(data, bytes) else str(data)
                if key.startswith("!"):
                    self.announce(key[1:])
                    self._to_tell.append(key[1:])  # after the L1 dropped it, as in-process
                else:
                    self.announce(key)
            elif message["type"] == "subscribe":
                if self._subscribed.is_set():
                    # redis-py reconnected and resubscribed by itself (its retry): what was
                    # announced in between was missed.
                    self._wake_everyone()
                    self._to_tell.append(None)
                # Whatever was announced before this confirmation was not heard: a value a
                # read took from the store before it must not be kept as a local copy once
                # the bus counts as live (the L1 compares its epoch, moved on here, first).
                self._changed(None)
                # Only the server's confirmation guarantees later announcements reach us.
                self._subscribed.set()
            message = pubsub.get_message(timeout=0.0)
        return received

    def _tell_all(self) -> None:
        # On the bus thread only, so in the order received.
        while self._to_tell:
            self._tell(self._to_tell.popleft())


def _socket(pubsub: Any) -> Any:
    """``pubsub``'s socket, or None (not connected, or a connection we cannot see into)."""
    sock = getattr(getattr(pubsub, "connection", None), "_sock", None)  # redis-py's
    return sock if sock is not None and hasattr(sock, "fileno") else None


def _ready(sock: Any, timeout: float, wake: socket.socket | None = None) -> bool | None:
    """Whether ``sock`` (or ``wake``) has data to read, waiting at most ``timeout`` seconds
    (GIL released); None if ``sock`` hung up or failed. ``poll`` where there is one:
    ``select`` fails on descriptors past 1023."""
    try:
        if getattr(sock, "pending", None) is not None and sock.pending():
            return True  # TLS: decrypted already, so the descriptor may not say so
        fd = sock.fileno()
        if fd < 0:
            return None
        others = [] if wake is None else [wake.fileno()]
        if hasattr(select, "poll"):
            poller = select.poll()  # one per call: a poll object is not for two threads
            poller.register(fd, select.POLLIN | getattr(select, "POLLRDHUP", 0))
            for other in others:
                poller.register(other, select.POLLIN)
            events = dict(poller.poll(timeout * 1000))
            if events.get(fd, 0) & _HUNG_UP:
                return None
            return bool(events)
        return bool(select.select([fd, *others], [], [], timeout)[0])
    except (OSError, ValueError):  # closed under us
        return None


class ClientPubSub:
    """What a fill listener subscribes and publishes through when the client is made later
    (the cluster store's, on first use): a failure to make it is a connection error, which
    the listener retries with backoff."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client

    def pubsub(self) -> Any:
        try:
            return open_pubsub(self._client())
        except _UNREACHABLE as exc:
            raise redis.ConnectionError(redact(f"redis cluster unreachable: {exc}")) from exc

    def publish(self, channel: str, message: str) -> Any:
        try:
            return self._client().publish(channel, message)
        except _UNREACHABLE as exc:
            raise redis.ConnectionError(redact(f"redis cluster unreachable: {exc}")) from exc
