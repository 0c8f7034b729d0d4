"""Evaluation exactly as FreiHAND's official script computes it, vectorised.

``align`` (similarity Procrustes), ``metrics`` (errors, PCK/AUC, F-scores, the whole table),
``io`` (FreiHAND prediction / ground-truth files, the real-photo annotation format) and
``report`` (metrics.json, per-sample CSV, PCK plot, the printed table).
"""

from .align import procrustes_align
from .metrics import EvalResult, Metrics, evaluate_arrays

__all__ = ["EvalResult", "Metrics", "evaluate_arrays", "procrustes_align"]
