"""Progress on a terminal, silence elsewhere: for commands that can run for minutes.

At national scale an import, a rebuild, a verify or a publish runs for minutes; a person at a
terminal should see it move. A program reading the output (a pipe, a file, CI) must get exactly
what it got before, so nothing is drawn unless stderr is a terminal. Plugins and the site's
publisher use ``bar`` (a known amount of work) or ``ticker`` (an unknown one) too.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

Update = Callable[[int], None]


def on_terminal() -> bool:
    """Is anyone watching? Progress is drawn on stderr only when it is a terminal."""
    return sys.stderr.isatty()


def _nothing(_: int) -> None:
    """The update of a bar nobody sees."""


@contextlib.contextmanager
def bar(label: str, length: int) -> Iterator[Update]:
    """A progress bar of ``length`` units on a terminal; yields ``update(units done since last)``.
    Off a terminal (or with nothing to do) the update does nothing and nothing is written."""
    if length <= 0 or not on_terminal():
        yield _nothing
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as shown:
        yield shown.update


@contextlib.contextmanager
def ticker(label: str, every: float = 1.0) -> Iterator[None]:
    """``label`` and the seconds elapsed, redrawn on a terminal while the block runs, for work
    whose size is not known in advance; the line is cleared at the end."""
    if not on_terminal():
        yield
        return
    done = threading.Event()
    start = time.monotonic()

    def draw() -> None:
        while not done.wait(every):
            click.echo(f"\r{label} {time.monotonic() - start:.0f} s", nl=False, err=True)

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        click.echo("\r" + " " * (len(label) + 12) + "\r", nl=False, err=True)


@contextlib.contextmanager
def pages(runner: Any, label: str, total: int) -> Iterator[None]:
    """A bar over the records a projection runner reads while the block runs (``catch_up``,
    ``rebuild``): counts the pages its reader yields, since the runner takes no progress callback."""
    if not on_terminal():
        yield
        return
    read = runner._pages
    with bar(label, total) as update:

        def counted(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for page in read(*args, **kwargs):
                update(len(page))
                yield page

        runner._pages = counted
        try:
            yield
        finally:
            del runner._pages
