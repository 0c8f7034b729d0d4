"""Progress that a log can show: rich's bar on a terminal, lines elsewhere.

rich draws its bar only on a terminal; written to a file or a pipe (``> run.log 2>&1``) it
prints nothing until the end, so a long run looks hung. ``track`` prints a line per tenth of
the way there instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

from rich.console import Console

T = TypeVar("T")


def track(items: Iterable[T], description: str, console: Console | None = None,
          lines: int = 10) -> Iterator[T]:  # fmt: skip
    """Yield ``items``, showing progress on ``console`` (None: rich's own): rich's bar on a
    terminal, else a line "description: k/n (s s)" after each ``n / lines`` items and after
    the last (``items`` without a length: a line per item, "k/?"; a single item: none)."""
    n = len(items) if isinstance(items, Sized) else None
    if n is not None and n <= 1 and not (console or _console()).is_terminal:
        yield from items  # (one item: its own output says it is done)
        return
    with Reporter(description, n, console, lines, every=1) as r:  # (no length: every item)
        for k, item in enumerate(items):
            yield item
            r.advance(k)


def _console() -> Console:
    from rich import get_console

    return get_console()


class Reporter:
    """``track``'s progress for work that reports itself (``advance(k)``: item ``k``, from 0,
    done; ``add(n)``: n more; ``update(done, total)``: a count, and a total known late), as a
    context manager: rich's bar on a terminal, else a line "description: k/n
    (s s)" after each ``total / lines`` items and after the last done (``total`` None: every
    ``every`` items, "k/?"; work that stops early says where it stopped)."""

    def __init__(self, description: str, total: int | None, console: Console | None = None,
                 lines: int = 10, every: int = 30) -> None:  # fmt: skip
        self.description, self.total, self.console = description, total, console or _console()
        self.lines, self.every = lines, every
        self.step = max(1, math.ceil(total / lines)) if total else every
        self._bar = None
        self._done = self._said = 0

    def __enter__(self) -> Reporter:
        self._t0 = time.perf_counter()
        if self.console.is_terminal:
            from rich.progress import Progress

            self._bar = Progress(console=self.console).__enter__()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def advance(self, k: int) -> None:
        """Item ``k`` (from 0) done."""
        self.update(k + 1)

    def add(self, n: int = 1) -> None:
        """``n`` more items done."""
        self.update(self._done + n)

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` items done (of ``total``, where it is only known now)."""
        if total is not None and total != self.total:
            self.total = total
            self.step = max(1, math.ceil(total / self.lines)) if total else self.every
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total)
        elif done > self._done:
            before, self._done = self._done, done
            # a line each time the count passes a multiple of the step, and at the end
            if done // self.step > before // self.step or done == self.total:
                self._line(done)

    def _line(self, done: int) -> None:
        self._said = done
        total = "?" if self.total is None else self.total
        self.console.print(f"{self.description}: {done}/{total} "
                           f"({time.perf_counter() - self._t0:.0f} s)", highlight=False)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
        elif self._done and self._done != self._said and exc[0] is not GeneratorExit:
            self._line(self._done)  # (stopped early; not where ``track``'s caller broke off)
