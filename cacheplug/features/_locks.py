"""``cache.lock(name)``: a distributed lock for the application's own jobs.

It is the same primitive as the stampede lease: a token set-if-absent with a timeout,
released and extended only by the holder of the token, and announced on release so that
waiters wake at once instead of polling.
"""

from __future__ import annotations

from cacheplug._config import ttl_ms
from cacheplug._engine.plans import lock_plan, new_token
from cacheplug._engine.reads import Engine
from cacheplug.encoding._keys import Purpose, check_key
from cacheplug.exceptions import LockError


class Lock:
    """A lock named ``name`` in the cache's namespace (use ``cache.lock(...)``).

    ``with lock: ...`` / ``async with lock: ...`` acquire (raising :class:`LockError` if
    ``blocking_timeout`` passes) and release. ``acquire()`` returns False instead.
    """

    def __init__(
        self,
        cache: Engine,
        name: str,
        timeout: float,
        *,
        blocking: bool = True,
        blocking_timeout: float | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"a lock timeout must be positive seconds, not {timeout!r}")
        self._cache = cache
        self.name = check_key(name)
        self.timeout = float(timeout)
        self.blocking = blocking
        self.blocking_timeout = blocking_timeout
        self._key = cache._keys.build(Purpose.LOCK, name)
        self._token: bytes | None = None

    def __repr__(self) -> str:
        state = "held" if self._token else "not held"
        return f"<Lock {self.name!r} {state}>"

    @property
    def held(self) -> bool:
        """True while this object holds the lock (as far as it knows: see :meth:`extend`)."""
        return self._token is not None

    def _plan(self, token: bytes, blocking: bool | None, wait: float | None) -> object:
        store = self._cache._store
        return lock_plan(
            lock_key=self._key,
            token=token,
            ttl_ms=ttl_ms(self.timeout) or 1,
            blocking=self.blocking if blocking is None else blocking,
            wait_timeout=self.blocking_timeout if wait is None else wait,
            expect=store.fills.expect,
            fills_live=lambda: store.fills.live,
            monotonic=self._cache._clock.monotonic,
        )

    def _check_not_held(self) -> None:
        if self._token is not None:
            raise LockError(f"lock {self.name!r} is already held by this Lock object")

    def acquire(self, blocking: bool | None = None, timeout: float | None = None) -> bool:
        """Take the lock; False if it was not free (non-blocking) or not in ``timeout`` s."""
        self._check_not_held()
        token = new_token()
        if self._cache._run(self._plan(token, blocking, timeout)):  # type: ignore[arg-type]
            self._token = token
            return True
        return False

    def release(self) -> None:
        """Let the lock go; :class:`LockError` if it had expired (someone else may hold it)."""
        token, self._token = self._token, None
        if token is None:
            raise LockError(f"lock {self.name!r} is not held")
        store = self._cache._store
        if not self._cache._call(
            "release_lease", True, store.release_lease, self._key, self._key, token
        ):
            raise LockError(f"lock {self.name!r} had expired before it was released")

    def extend(self, timeout: float | None = None) -> None:
        """Hold the lock ``timeout`` more seconds from now (default: the lock's timeout)."""
        if self._token is None:
            raise LockError(f"lock {self.name!r} is not held")
        ms = ttl_ms(self.timeout if timeout is None else timeout) or 1
        store = self._cache._store
        if not self._cache._call(
            "extend_lease", True, store.extend_lease, self._key, self._token, ms
        ):
            self._token = None
            raise LockError(f"lock {self.name!r} had expired before it was extended")

    async def aacquire(self, blocking: bool | None = None, timeout: float | None = None) -> bool:
        """Async :meth:`acquire`."""
        self._check_not_held()
        token = new_token()
        if await self._cache._arun(self._plan(token, blocking, timeout)):  # type: ignore[arg-type]
            self._token = token
            return True
        return False

    async def arelease(self) -> None:
        """Async :meth:`release`."""
        token, self._token = self._token, None
        if token is None:
            raise LockError(f"lock {self.name!r} is not held")
        store = self._cache._store
        if not await self._cache._acall(
            "release_lease", True, store.arelease_lease, self._key, self._key, token
        ):
            raise LockError(f"lock {self.name!r} had expired before it was released")

    async def aextend(self, timeout: float | None = None) -> None:
        """Async :meth:`extend`."""
        if self._token is None:
            raise LockError(f"lock {self.name!r} is not held")
        ms = ttl_ms(self.timeout if timeout is None else timeout) or 1
        store = self._cache._store
        if not await self._cache._acall(
            "extend_lease", True, store.aextend_lease, self._key, self._token, ms
        ):
            self._token = None
            raise LockError(f"lock {self.name!r} had expired before it was extended")

    def __enter__(self) -> Lock:
        if not self.acquire():
            raise LockError(f"could not acquire lock {self.name!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    async def __aenter__(self) -> Lock:
        if not await self.aacquire():
            raise LockError(f"could not acquire lock {self.name!r}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.arelease()
