"""Where the repository is: the tests run its code and its entry points."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
