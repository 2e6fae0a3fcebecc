"""``flask cacheplug warm|flush|stats|inspect|writebehind|cdc``: the same commands, behaviour
and output as the Django adapter's (the work is done by ``cacheplug.integration``)."""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any, Protocol

import click
from flask.cli import with_appcontext

from cacheplug.integration import (
    CDC_SOURCES,
    OperationError,
    WarmProgress,
    drain_queues,
    flush,
    inspect_report,
    run_change_feed,
    stats_report,
    store_checked,
    warm,
    watch,
    watch_interval,
)

ERASE_LINE = "\r\x1b[K"  # back to the line's start, then clear it (ANSI)

if TYPE_CHECKING:
    from cacheplug import Cache
    from cacheplug.integration import Warmers


class Commanded(Protocol):
    """What the commands use of their extension: a ``CachePlug``, which imports this module to
    add them to its app (naming the class here would import it back)."""

    @property
    def warmers(self) -> Warmers: ...

    @property
    def cache(self) -> Cache: ...

    @property
    def config_prefix(self) -> str: ...

    def mappers(self) -> list[Any]: ...


def command_group(extension: Commanded) -> click.Group:
    """The ``cacheplug`` command group of one extension."""

    @click.group(help="Warm, flush and look into the cache.")
    def group() -> None:
        pass

    def fail(exc: OperationError) -> None:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)

    @group.command(
        "warm", help="Fill the cache ahead of traffic by running the registered warmers."
    )
    @click.option("--only", multiple=True, metavar="NAME", help="run only these warmers")
    @click.option("--workers", default=1, show_default=True, help="warmers run at once")
    @click.option("--dry-run", is_flag=True, help="list what would run")
    @click.option("--json", "as_json", is_flag=True, help="print one JSON object")
    @with_appcontext
    def warm_command(only: tuple[str, ...], workers: int, dry_run: bool, as_json: bool) -> None:
        from flask import current_app

        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def in_app(fn: Any) -> Any:
            def run() -> Any:
                with app.app_context():
                    result = fn()
                    # A generator runs as it is consumed: keep the context while it does.
                    return list(result) if hasattr(result, "__next__") else result

            return run

        bar = _WarmBar()  # drawn only at a terminal: given the run's progress there
        try:
            warm(
                # A warmer whose loads the store did not take has warmed nothing: it fails.
                store_checked(
                    {name: in_app(fn) for name, fn in extension.warmers.all().items()},
                    extension.cache,
                ),
                only=list(only) or None,
                workers=workers,
                dry_run=dry_run,
                as_json=as_json,
                out=bar.echo,
                err=functools.partial(bar.echo, err=True),
                advance=bar.advance if sys.stdout.isatty() and not as_json else None,
            )
        except OperationError as exc:
            fail(exc)
        finally:
            bar.finish()
            extension.cache.publish_stats()  # the warmers' loads count in `stats` too

    @group.command("flush", help="Invalidate by tag, model, key, nested namespace, or everything.")
    @click.option("--tag", "tags", multiple=True, metavar="T", callback=_named)
    @click.option("--model", "models", multiple=True, metavar="Model", callback=_named)
    @click.option("--key", "keys", multiple=True, metavar="K", callback=_named)
    @click.option("--namespace", metavar="NAME", callback=_named)
    @click.option("--all", "everything", is_flag=True)
    @click.option("--yes", is_flag=True, help="do not ask before --all")
    @click.option("--json", "as_json", is_flag=True, help="print one JSON object")
    @with_appcontext
    def flush_command(
        tags: tuple[str, ...],
        models: tuple[str, ...],
        keys: tuple[str, ...],
        namespace: str | None,
        everything: bool,
        yes: bool,
        as_json: bool,
    ) -> None:
        chosen = sum(bool(x) for x in (tags, models, keys, namespace, everything))
        if chosen != 1:
            fail(OperationError("choose one of --tag, --model, --key, --namespace, --all"))
        all_tags, described_as = list(tags), None
        if models:
            try:
                all_tags = _model_tags(extension, models)
            except LookupError as exc:
                fail(OperationError(f"{exc}; nothing was flushed"))
            described_as = f"everything depending on {', '.join(models)}"

        def ask(question: str) -> bool:
            if not sys.stdin.isatty():
                raise OperationError(
                    "--all asks first; pass --yes when not at a terminal. Nothing was flushed."
                )
            return click.confirm(question, default=False)

        try:
            click.echo(
                flush(
                    extension.cache,
                    tags=all_tags,
                    described_as=described_as,
                    keys=keys,
                    namespace=namespace,
                    everything=everything,
                    confirm=None if yes else ask,
                    as_json=as_json,
                )
            )
        except OperationError as exc:
            fail(exc)

    @group.command(
        "stats", help="Hit ratio, loads, stampedes averted, errors, hot keys and the store."
    )
    @click.option("--json", "as_json", is_flag=True, help="print one JSON object")
    @click.option(
        "--watch",
        "every",
        metavar="N",
        callback=_seconds,
        help="refresh every N seconds until Ctrl-C (with --json: one document a line)",
    )
    @with_appcontext
    def stats_command(as_json: bool, every: float | None) -> None:
        from flask import current_app

        from cacheplug_flask.cdc import stats_feed

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            feed = stats_feed(app, extension.cache, extension.config_prefix, extension.mappers())
        except OperationError as exc:  # the stats still count: say why the slot is not shown
            click.echo(f"cdc: {exc}", err=True)
            feed = None

        def report() -> str:
            return stats_report(
                extension.cache, as_json=as_json, change_feed=feed, one_line=every is not None
            )

        if every is not None:
            watch(
                report,
                every=every,
                out=click.echo,
                err=lambda line: click.echo(line, err=True),
                terminal=sys.stdout.isatty(),
                as_json=as_json,
            )
            return
        try:
            click.echo(report())
        except OperationError as exc:
            fail(exc)

    @group.command("inspect", help="Show a cache entry: state, age, ttl left, tags, size.")
    @click.argument("key")
    @click.option("--json", "as_json", is_flag=True, help="print one JSON object")
    @with_appcontext
    def inspect_command(key: str, as_json: bool) -> None:
        try:
            click.echo(inspect_report(extension.cache, key, as_json=as_json))
        except OperationError as exc:
            fail(exc)

    @group.command("writebehind", help="Drain the write-behind queues into their sinks.")
    @click.option("--only", multiple=True, metavar="NAME", help="drain only these queues")
    @click.option("--once", is_flag=True, help="stop when the queues are empty")
    @with_appcontext
    def writebehind_command(only: tuple[str, ...], once: bool) -> None:
        try:
            drain_queues(
                extension.cache.write_behind_queues(),
                only=list(only) or None,
                once=once,
                out=click.echo,
                warn=lambda line: click.echo(line, err=True),  # as Django's: a retry warns
            )
        except OperationError as exc:
            fail(exc)

    @group.command(
        "cdc",
        help="Invalidate what every committed PostgreSQL change wrote (change data capture), "
        "or what Debezium's change events from Redis Streams say.",
    )
    @click.option("--slot", metavar="NAME", help="the replication slot (default: the setting's)")
    @click.option("--drop-slot", is_flag=True, help="drop the slot and exit")
    @click.option("--once", is_flag=True, help="consume what the slot holds now, then exit")
    @click.option(
        "--source",
        type=click.Choice(CDC_SOURCES),
        help="where the changes come from (default: the setting's)",
    )
    @click.option(
        "--stream",
        "streams",
        multiple=True,
        metavar="NAME",
        help="a Redis Stream of Debezium's events, or a pattern with * (repeatable)",
    )
    @with_appcontext
    def cdc_command(
        slot: str | None,
        drop_slot: bool,
        once: bool,
        source: str | None,
        streams: tuple[str, ...],
    ) -> None:
        from flask import current_app

        from cacheplug_flask.cdc import feed_for

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            feed, database = feed_for(
                app,
                extension.cache,
                extension.config_prefix,
                mappers=extension.mappers(),
                slot=slot,
                drop_slot=drop_slot,
                source=source,
                streams=streams,
            )
            run_change_feed(feed, database=database, drop_slot=drop_slot, once=once, out=click.echo)
        except OperationError as exc:
            fail(exc)

    return group


def _named(context: click.Context, parameter: click.Parameter, value: Any) -> Any:
    """Refuse an empty name (``--tag ''`` would flush nothing, silently): a usage error."""
    for name in (value,) if isinstance(value, str) else value or ():
        if not name.strip():
            raise click.BadParameter("an empty name names nothing. Nothing was flushed.")
    return value


def _seconds(context: click.Context, parameter: click.Parameter, value: Any) -> float | None:
    """``--watch N``: seconds above 0, else a usage error (the same message as Django's)."""
    if value is None:
        return None
    try:
        return watch_interval(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


class _WarmBar:
    """click's progress bar over a warm run, once it is given the run's progress: one step
    per warmer ended, the keys so far beside it. The run's lines are printed above it (the
    bar's line is cleared first, and drawn again at the next step); it ends when the last
    warmer does. Never given progress, it only echoes the lines."""

    def __init__(self) -> None:
        self._bar: Any = None  # click.progressbar's bar, made at the first report
        self._finished = 0
        self._ended = False

    def advance(self, step: WarmProgress) -> None:
        if self._bar is None:
            self._bar = click.progressbar(
                length=step.warmers,
                label="warming",
                show_pos=True,
                item_show_func=lambda shown: None if shown is None else shown.describe(),
            )
        if step.finished > self._finished:
            self._bar.update(step.finished - self._finished, step)
        else:  # keys moved, no warmer ended: update() would not redraw for 0 steps
            self._bar.current_item = step
            self._bar.render_progress()
        self._finished = step.finished
        if step.finished == step.warmers:
            self.finish()

    def echo(self, line: str, err: bool = False) -> None:
        if self._bar is not None and not self._ended:
            click.echo(ERASE_LINE, nl=False)
        click.echo(line, err=err)

    def finish(self) -> None:
        if self._bar is not None and not self._ended:
            self._ended = True
            self._bar.render_finish()


def _model_tags(extension: Commanded, names: tuple[str, ...]) -> list[str]:
    """Tags of mapped classes named ``Product`` or ``module.Product``."""
    from cacheplug_flask.model_tags import flush_tags

    mappers = extension.mappers()
    found = []
    for name in names:
        matches = [
            mapper.class_
            for mapper in mappers
            if name
            in (mapper.class_.__name__, f"{mapper.class_.__module__}.{mapper.class_.__name__}")
        ]
        if not matches:
            raise LookupError(f"unknown model {name!r}")
        found.append(matches[0])
    return flush_tags(*found)
