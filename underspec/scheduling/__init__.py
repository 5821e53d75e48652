"""Scheduling: the Optuna study that hands out grid points to workers, and the one module that
touches Optuna's private API (optuna_shim)."""
