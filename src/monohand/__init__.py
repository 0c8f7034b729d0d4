"""monohand."""
