"""Announcements of fills over Redis pub/sub, fed into a :class:`FillListener`.

One daemon thread per store holds a subscription to the store's announce channel and wakes
local waiters when a key is announced (a message starting with ``!`` is an invalidation, also
handed to the invalidation subscribers). If the subscription drops, every waiter is woken (an
announcement may have been missed; they re-check the store) and the thread resubscribes with
backoff. While it is down, ``live`` is False and callers wait in short slices instead.

A thread that runs pure Python without pause (L1 hits in a loop) keeps the GIL for the
interpreter's whole switch interval (5 ms) whenever the bus thread wants it, and the bus thread
wants it two or three times per message (after the wait, after each socket read): an
invalidation then took 10-20 ms to reach the L1. So the bus thread waits for its socket itself
(``select``-style, without reading it), and :meth:`RedisFillListener.catch_up` lets a reading
thread that finds the socket readable, or the bus thread at work, block until the bus thread has
handled what is there: blocking releases the GIL. Only the bus thread reads the subscription
(redis-py's ``PubSub`` is not thread-safe, and a read may reconnect) and calls the subscribers
(they are promised the bus thread); a reading thread waits at most ``_CATCH_UP_WAIT`` and, if
the bus thread is stuck in a slow subscriber, stops waiting for it until it moves on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
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
# How long a reading thread waits for the bus thread: handling a message takes well under a
# millisecond once the bus thread runs; longer means it is stuck in a subscriber.
_CATCH_UP_WAIT = 0.002


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
        # What catch_up reads: the bus thread's subscription, whether it is handling
        # messages, and how many rounds of handling it has finished (under ``_handled``).
        self._pubsub: Any = None
        self._thread_id = 0
        self._busy = False
        self._rounds = 0
        self._gave_up_at = -1
        self._handled = threading.Condition(threading.Lock())

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
        self._receiving()
        # Whatever was announced between the fork and now was missed: local copies the
        # parent made (an L1) are dropped before anything is served again.
        self._notify(None)

    def stop(self) -> None:
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            if self._subscribed.is_set():
                # Wake the subscriber from its poll rather than wait it out (an empty key
                # wakes nobody else).
                with contextlib.suppress(redis.RedisError, OSError):
                    self._client.publish(self.channel, "")
            thread.join(timeout=2 * _POLL_SECONDS + 1)
        super().stop()

    def catch_up(self) -> None:
        rounds = self._rounds  # read first: a round that ends after this line counts
        if rounds == self._gave_up_at or threading.get_ident() == self._thread_id:
            return  # stuck in a slow subscriber when last waited for, or we are the bus thread
        if not self._busy:
            pubsub = self._pubsub
            if pubsub is None:
                return
            sock = _socket(pubsub)
            if sock is None or not _readable(sock, 0.0):
                return
        with self._handled:
            if not self._handled.wait_for(lambda: self._rounds != rounds, _CATCH_UP_WAIT):
                self._gave_up_at = rounds

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
                    if self._receive(pubsub):
                        backoff = 0.05
            except (redis.RedisError, OSError) as exc:
                if self._subscribed.is_set():
                    logger.warning("cacheplug: lost the fill subscription (%s); resubscribing", exc)
                self._subscribed.clear()
                self.wake_all()
                self._stopping.wait(backoff)
                backoff = min(_MAX_BACKOFF, backoff * 2)
            finally:
                self._pubsub = None
                if pubsub is not None:
                    with contextlib.suppress(redis.RedisError, OSError):
                        pubsub.close()
        self._subscribed.clear()

    def _receive(self, pubsub: Any) -> bool:
        """Wait (at most ``_POLL_SECONDS``) for messages, then handle every one there is;
        True if the subscription was confirmed meanwhile."""
        confirmed = False
        sock = _socket(pubsub)
        try:
            if sock is not None:
                _readable(sock, _POLL_SECONDS)  # without reading: see the module docstring
                # Busy from before the first read: a read releases the GIL, and a reading
                # thread must know that what left the socket is not handled yet.
                self._busy = True
                message = pubsub.get_message(timeout=0.0)
            else:  # a connection we cannot see into: let redis-py wait
                message = pubsub.get_message(timeout=_POLL_SECONDS)
                self._busy = True
            while message is not None:
                if message["type"] == "message":
                    data = message["data"]
                    key = data.decode() if isinstance(data, bytes) else str(data)
                    if key.startswith("!"):
                        self.invalidated(key[1:])
                    else:
                        self.announce(key)
                elif message["type"] == "subscribe":
                    if self._subscribed.is_set():
                        # redis-py reconnected and resubscribed by itself (its retry): what
                        # was announced in between was missed.
                        self.wake_all()
                    # Only the server's confirmation guarantees later announcements reach us.
                    self._subscribed.set()
                    confirmed = True
                message = pubsub.get_message(timeout=0.0)
        finally:
            self._busy = False
            with self._handled:
                self._rounds += 1
                self._handled.notify_all()
        return confirmed


def _socket(pubsub: Any) -> Any:
    """``pubsub``'s socket, or None (not connected, or a connection we cannot see into)."""
    sock = getattr(getattr(pubsub, "connection", None), "_sock", None)  # redis-py's
    return sock if sock is not None and hasattr(sock, "fileno") else None


def _readable(sock: Any, timeout: float) -> bool:
    """Whether ``sock`` has data to read, waiting at most ``timeout`` seconds (GIL released).
    ``poll`` where there is one: ``select`` fails on descriptors past 1023."""
    try:
        if getattr(sock, "pending", None) is not None and sock.pending():
            return True  # TLS: decrypted already, so the descriptor may not say so
        fd = sock.fileno()
        if fd < 0:
            return False  # closed under us: the bus thread finds out
        if hasattr(select, "poll"):
            poller = select.poll()  # one per call: a poll object is not for two threads
            poller.register(fd, select.POLLIN)
            # Not for a descriptor closed under us (POLLNVAL alone): as above.
            return any(events != select.POLLNVAL for _, events in poller.poll(timeout * 1000))
        return bool(select.select([fd], [], [], timeout)[0])
    except (OSError, ValueError):  # as above
        return False


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
