"""Store calls under the failure policy, and the two drivers that carry out plans.

``StoreIO`` is a component of each engine (``EngineState`` builds one and binds its methods as
``_call``, ``_read``, ``_run``, ... so that the hot path pays no extra lookup).
``call``/``acall`` make one store call: refused while the circuit breaker is open, a
failure counted, logged once per burst and turned into ``FAILED`` (or raised, if strict).
``run``/``arun`` perform the steps of a plan (see ``plans``) with blocking calls or
with ``await``: the drivers, the only code that differs between a plan's sync and async runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any

from cacheplug._clock import Clock
from cacheplug._engine.coalesce import ReadBatches
from cacheplug._engine.metrics import Counters
from cacheplug._engine.plans import CALL, READ, RUN, SLEEP, STORE, WAIT, Plan, Step, StoreOp
from cacheplug._engine.resilience import BurstLogger, CircuitBreaker
from cacheplug._types import FAILED
from cacheplug.exceptions import CacheUnavailable
from cacheplug.stores.base import Store


@dataclass(slots=True)
class StoreIO:
    """A cache's store calls under the failure policy, and its plan drivers."""

    _store: Store
    _batches: ReadBatches | None
    _breaker: CircuitBreaker
    _counters: Counters
    _error_log: BurstLogger
    _clock: Clock
    # The store methods plan steps name, looked up once rather than at every step.
    _sync_ops: dict[StoreOp, Callable[..., Any]] = field(init=False)
    _async_ops: dict[StoreOp, Callable[..., Awaitable[Any]]] = field(init=False)

    def __post_init__(self) -> None:
        self._sync_ops = {op: getattr(self._store, op.value) for op in StoreOp}
        self._async_ops = {op: getattr(self._store, op.async_name) for op in StoreOp}

    def _refused(self, operation: str, strict: bool) -> Any:
        if strict:
            raise CacheUnavailable(
                f"{operation} not attempted: the circuit breaker is open after repeated "
                "store failures; it lets a probe through after "
                f"{self._breaker.reset_timeout} s"
            )
        return FAILED

    def _failed(self, exc: CacheUnavailable, operation: str, strict: bool) -> Any:
        self._counters.errors += 1
        self._breaker.record_failure()
        self._error_log.warning(
            f"cacheplug: {operation} failed on {self._store!r}; falling through", exc
        )
        if strict:
            raise exc
        return FAILED

    # -- sync --------------------------------------------------------------------------------

    def call(self, operation: str, strict: bool, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` under the failure policy: ``FAILED`` (or a raise, if ``strict``)
        when the breaker refuses or the store fails."""
        breaker = self._breaker
        if breaker.tripped and not breaker.allow():
            return self._refused(operation, strict)
        try:
            result = fn(*args)
        except CacheUnavailable as exc:
            return self._failed(exc, operation, strict)
        if breaker.tripped:
            breaker.record_success()
        return result

    def read(self, keys: list[str], strict: bool) -> list[Any]:
        """The values of ``keys`` (an entry and its version keys), ``None`` for each when the
        read fails (or a raise, if ``strict``). Concurrent reads of the same keys share round
        trips (``_coalesce``) on a network store."""
        if self._breaker.tripped:
            return self._read_now(keys, strict)  # and no waiting on another's probe
        batches = self._batches
        if batches is not None:
            return batches.read(tuple(keys), lambda: self._read_now(keys, strict))
        # The hot path of an in-process store: one flag check and the read.
        try:
            return self._store.get_many(keys)
        except CacheUnavailable as exc:
            self._failed(exc, "get", strict)
            return [None] * len(keys)

    def _read_now(self, keys: list[str], strict: bool) -> list[Any]:
        # The hot path: while the breaker has seen no failure, one flag check and the MGET.
        if self._breaker.tripped:
            values = self.call("get", strict, self._store.get_many, keys)
            return [None] * len(keys) if values is FAILED else values
        try:
            return self._store.get_many(keys)
        except CacheUnavailable as exc:
            self._failed(exc, "get", strict)
            return [None] * len(keys)

    def run(self, plan: Plan, loader: Callable[[], Any] | None = None) -> Any:
        """Carry out ``plan`` with blocking calls; its return value."""
        send = plan.send
        result: Any = None
        while True:  # written out rather than shared with arun: set() runs it on every call
            try:
                step = send(result)
                result, error = self._step(step, loader)
                while error is not None:
                    result, error = self._step(plan.throw(error), loader)
            except StopIteration as done:
                return done.value

    def _step(self, step: Step, loader: Callable[[], Any] | None) -> Outcome:
        try:
            kind = step[0]
            if kind is CALL:
                _, operation, op, strict, args = step
                return self.call(operation, strict, self._sync_ops[op], *args), None
            if kind is STORE:  # counted and logged under the method's name
                _, op, strict, args = step
                return self.call(op.value, strict, self._sync_ops[op], *args), None
            if kind is READ:
                return self.read(step[1], step[2]), None
            if kind is WAIT:
                return step[1].wait(step[2]), None
            if kind is SLEEP:
                time.sleep(step[1])
                return None, None
            assert loader is not None, "a plan that loads or runs a callable needs one"
            if kind is RUN:
                return loader(), None
            started = self._clock.monotonic()  # LOAD
            value = loader()
            self._counters.loads += 1
            return (value, self._clock.monotonic() - started), None
        except BaseException as exc:
            return None, exc

    # -- async -------------------------------------------------------------------------------

    async def acall(
        self, operation: str, strict: bool, fn: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        breaker = self._breaker
        if breaker.tripped and not breaker.allow():
            return self._refused(operation, strict)
        try:
            result = await fn(*args)
        except CacheUnavailable as exc:
            return self._failed(exc, operation, strict)
        if breaker.tripped:
            breaker.record_success()
        return result

    async def aread(self, keys: list[str], strict: bool) -> list[Any]:
        if self._breaker.tripped:
            values = await self.acall("get", strict, self._store.aget_many, keys)
            return [None] * len(keys) if values is FAILED else values
        try:
            return await self._store.aget_many(keys)
        except CacheUnavailable as exc:
            self._failed(exc, "get", strict)
            return [None] * len(keys)

    async def arun(self, plan: Plan, loader: Callable[[], Any] | None = None) -> Any:
        """Carry out ``plan`` with ``await``; its return value."""
        send = plan.send
        result: Any = None
        while True:
            try:
                step = send(result)
                result, error = await self._astep(step, loader)
                while error is not None:
                    result, error = await self._astep(plan.throw(error), loader)
            except StopIteration as done:
                return done.value

    async def _astep(self, step: Step, loader: Callable[[], Any] | None) -> Outcome:
        try:
            kind = step[0]
            if kind is CALL:
                _, operation, op, strict, args = step
                return await self.acall(operation, strict, self._async_ops[op], *args), None
            if kind is STORE:
                _, op, strict, args = step
                return await self.acall(op.value, strict, self._async_ops[op], *args), None
            if kind is READ:
                return await self.aread(step[1], step[2]), None
            if kind is WAIT:
                return await step[1].wait_async(step[2]), None
            if kind is SLEEP:
                await asyncio.sleep(step[1])
                return None, None
            assert loader is not None, "a plan that loads or runs a callable needs one"
            started = self._clock.monotonic()
            value = loader()
            if isawaitable(value):
                value = await value
            if kind is RUN:
                return value, None
            self._counters.loads += 1  # LOAD
            return (value, self._clock.monotonic() - started), None
        except BaseException as exc:
            return None, exc


Outcome = tuple[Any, BaseException | None]
"""What a step gave: ``(result, None)``, or ``(None, the error to throw into the plan)``."""
