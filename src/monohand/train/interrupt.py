"""Ctrl-C during training: the first asks the loop to stop after the step under way, with a
checkpoint of it saved, so that nothing since the last periodic checkpoint is lost and
``--resume`` continues from there exactly; a second stops at once, as Python usually does.
(A checkpoint written in the middle of a step, by a ``KeyboardInterrupt`` raised anywhere in
it, could hold parameters that the optimiser had half updated: so the step is finished
first.)"""

from __future__ import annotations

import signal
import threading


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C at a step boundary, with ``step``'s checkpoint at
    ``checkpoint`` (None where no process of this run writes one)."""

    def __init__(self, step: int, checkpoint: str | None) -> None:
        super().__init__(f"interrupted at step {step}")
        self.step, self.checkpoint = step, checkpoint


class StopRequest:
    """A context in which SIGINT sets ``requested`` instead of raising; the handler is the
    caller's again after the first signal (a second one interrupts at once) and on exit.
    Outside the main thread (where signals cannot be caught), or where SIGINT is ignored (a
    background job), it is never requested."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is not threading.main_thread():
            return self
        current = signal.getsignal(signal.SIGINT)
        if current is signal.SIG_IGN:  # (a background job: Ctrl-C is not its to take)
            return self
        # (None: a handler set outside Python; Python's own stands for it afterwards)
        self._previous = signal.default_int_handler if current is None else current
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
