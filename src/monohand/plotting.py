"""matplotlib, imported on first use: every figure of the package comes through ``pyplot``.

Its own module (imports nothing of ours, and no torch) so that what only draws a chart, such
as ``monohand evaluate``'s PCK plot, does not load the renderer with ``viz``.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def pyplot():
    """matplotlib's pyplot on the Agg backend (no display): it costs 0.5 s to import, and the
    overlays of ``monohand reconstruct`` are drawn with PIL alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
