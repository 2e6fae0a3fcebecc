"""Exceptions raised by cacheplug.

::

    Exception
     └── CacheError                 base of everything cacheplug raises on purpose
          ├── CacheUnavailable      the store is down, slow, refused the call, or the
          │                         circuit breaker is open (raised only where asked: strict
          │                         mode, counters); stores raise it for any backend failure
          ├── ConfigurationError    a setting or URL that cannot work (also a ValueError)
          ├── LockError             a lock not acquired in time, or no longer held when
          │                         released or extended
          ├── NotACounter           incr() on a key that holds a non-integer value
          │                         (also a TypeError)
          └── QueueFull             a write-behind queue holds max_length entries: the
                                    write was not queued

Serialization problems surface as the builtin ``TypeError`` (a value the codec cannot
encode) because that is what ``json``/``pickle`` users already catch.
"""

from __future__ import annotations


class CacheError(Exception):
    """Base class of the errors cacheplug raises."""


class CacheUnavailable(CacheError):
    """The store could not be used: connection refused, timeout, bad reply, breaker open."""


class ConfigurationError(CacheError, ValueError):
    """A setting, URL or combination of options that cannot work."""


class LockError(CacheError):
    """A lock could not be acquired in time, or was no longer held when released/extended."""


class NotACounter(CacheError, TypeError):
    """``incr``/``decr`` on a key whose value is not an integer."""


class QueueFull(CacheError):
    """The write-behind queue holds ``max_length`` entries: the write was not queued."""
