"""The tests import this worktree's code (the repository root first on sys.path) and the shared
helpers (tests/, so `helpers` is a package); the shared fixtures are the plugin helpers.fixtures."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import settings as hypothesis_settings

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS.parent), str(TESTS)]

pytest_plugins = ["helpers.fixtures", "helpers.scale_out"]

# CI replays the same examples every time (no random draws, no example database).
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")
