"""Progress in a log: lines a tenth of the way apart, not rich's bar, which a file never sees."""

from __future__ import annotations

import io

from rich.console import Console

from monohand.progress import track


def test_a_log_gets_a_line_per_tenth_and_the_items_all():
    log = io.StringIO()
    console = Console(file=log, width=120)  # a file: not a terminal
    assert not console.is_terminal
    items = list(range(23))
    assert list(track(items, "reconstructing (hybrid)", console)) == items
    lines = log.getvalue().splitlines()
    # every ceil(23 / 10) = 3 items, and the last
    assert [ln.split(" (")[0] for ln in lines[:2]] == ["reconstructing", "reconstructing"]
    counts = [ln.split(": ")[1].split(" ")[0] for ln in lines]
    assert counts == [f"{k}/23" for k in (3, 6, 9, 12, 15, 18, 21, 23)], lines
    log.truncate(0)
    log.seek(0)
    assert list(track((k for k in range(3)), "frames", console)) == [0, 1, 2]  # no length
    assert [ln.split(" (")[0] for ln in log.getvalue().splitlines()] == [
        "frames: 1/?", "frames: 2/?", "frames: 3/?"]
    log.truncate(0)
    log.seek(0)
    assert list(track(["photo.jpg"], "reconstructing", console)) == ["photo.jpg"]
    assert log.getvalue() == ""  # one item: its own output says it is done
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)
    assert list(track([1, 2], "x", terminal)) == [1, 2]  # rich's bar there
    assert "1/2" not in terminal.file.getvalue()


def test_work_that_reports_itself_gets_the_same_lines():
    """``Reporter``: a video's frames, counted by the work's own callback: a line per tenth
    of a known total and the last; every ``every`` items of an unknown one; rich's bar on a
    terminal."""
    from monohand.progress import Reporter

    log = io.StringIO()
    console = Console(file=log, width=120)
    with Reporter("clip", 20, console) as r:
        for k in range(20):
            r.advance(k)
    counts = [ln.split(": ")[1].split(" ")[0] for ln in log.getvalue().splitlines()]
    assert counts == [f"{k}/20" for k in range(2, 21, 2)], counts
    log.truncate(0)
    log.seek(0)
    with Reporter("clip", None, console, every=4) as r:
        for k in range(10):
            r.advance(k)
    assert [ln.split(" (")[0] for ln in log.getvalue().splitlines()] == [
        "clip: 4/?", "clip: 8/?", "clip: 10/?"]  # (the last, at the end)
    log.truncate(0)
    log.seek(0)
    with Reporter("frames", 20, console) as r:  # stopped early: where it stopped said
        for k in range(7):
            r.advance(k)
    assert [ln.split(" (")[0] for ln in log.getvalue().splitlines()] == [
        "frames: 2/20", "frames: 4/20", "frames: 6/20", "frames: 7/20"]
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)
    with Reporter("clip", 2, terminal) as r:
        r.advance(0)
        r.advance(1)
    assert "clip: 2/2" not in terminal.file.getvalue()


def test_counts_in_steps_and_a_total_known_late():
    """``add(n)`` (a generator's batches) and ``update(done, total)`` (a total known only
    once the work has looked): a line whenever the count passes a tenth, and at the end."""
    from monohand.progress import Reporter

    log = io.StringIO()
    console = Console(file=log, width=120)
    with Reporter("rendering", 20, console) as r:
        for _ in range(4):
            r.add(5)  # 5, 10, 15, 20: each passes a step of 2
    counts = [ln.split(": ")[1].split(" ")[0] for ln in log.getvalue().splitlines()]
    assert counts == ["5/20", "10/20", "15/20", "20/20"], counts
    log.truncate(0)
    log.seek(0)
    with Reporter("labels", None, console) as r:
        for k in range(1, 11):
            r.update(k, total=10)
    counts = [ln.split(": ")[1].split(" ")[0] for ln in log.getvalue().splitlines()]
    assert counts == [f"{k}/10" for k in range(1, 11)], counts
