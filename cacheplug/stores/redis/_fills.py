"""Announcements of fills over Redis pub/sub, fed into a :class:`FillListener`.

One daemon thread per store holds a subscription to the store's announce channel and wakes
local waiters when a key is announced (a message starting with ``!`` is an invalidation, also
handed to the invalidation subscribers). If the subscription drops, every waiter is woken (an
announcement may have been missed; they re-check the store) and the thread resubscribes with
backoff. While it is down, ``live`` is False and callers wait in short slices instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
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

    def _run(self) -> None:
        backoff = 0.05
        while not self._stopping.is_set():
            pubsub: Any = None
            try:
                pubsub = open_pubsub(self._client)
                pubsub.subscribe(self.channel)
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=_POLL_SECONDS)
                    if message is None:
                        continue
                    if message["type"] == "message":
                        data = message["data"]
                        key = data.decode() if isinstance(data, bytes) else str(data)
                        if key.startswith("!"):
                            self.invalidated(key[1:])
                        else:
                            self.announce(key)
                    elif message["type"] == "subscribe":
                        if self._subscribed.is_set():
                            # redis-py reconnected and resubscribed by itself (its retry):
                            # what was announced in between was missed.
                            self.wake_all()
                        # Only the server's confirmation guarantees later announcements reach us.
                        self._subscribed.set()
                        backoff = 0.05
            except (redis.RedisError, OSError) as exc:
                if self._subscribed.is_set():
                    logger.warning("cacheplug: lost the fill subscription (%s); resubscribing", exc)
                self._subscribed.clear()
                self.wake_all()
                self._stopping.wait(backoff)
                backoff = min(_MAX_BACKOFF, backoff * 2)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(redis.RedisError, OSError):
                        pubsub.close()
        self._subscribed.clear()


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
