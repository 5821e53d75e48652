"""Measures on trained weights: unit alignment, APC / PE, nulls, barriers, per-cell rows, the
sources decomposition and trend tests. Pure numpy / scipy / torch; no tracker, no Optuna."""
