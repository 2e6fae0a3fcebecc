"""The engine under :class:`~cacheplug.Cache` (private).

The state of one cache and the Protocol features see it through (``state``, ``protocol``),
reads and replicas, writes and invalidation as plans, the plan steps and the sync/async drivers
that run them (``plans``, ``driver``), single-flight and coalescing (``flights``,
``coalesce``), background refreshes, the L1 tier, hot keys and counters. The L1 tier, hot keys
and counters live here rather than with the features because every read consults them: the
read path calls them directly instead of through a plug-in interface.

Nothing here imports :mod:`cacheplug.cache`, the features or write-behind, not even for typing.
"""
