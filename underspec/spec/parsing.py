"""Parsing of user input: each parser returns the typed value or raises ConfigError naming the
parameter and the offending value (entry points turn it into one line and exit 2). No torch,
MLflow or Optuna."""
from __future__ import annotations

import math
import os

DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """Bad user input: one line naming the parameter and the offending value."""

    def __init__(self, param: str, value, why: str):
        super().__init__(f"invalid {param}={value!r}: {why}")
        self.param = param


def _items(param: str, text: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",")]
    if not text or not str(text).strip() or any(t == "" for t in items):
        raise ConfigError(param, text, "expected a non-empty comma-separated list")
    return items


def parse_int(param: str, text, lo: int | None = None, hi: int | None = None, whole=None) -> int:
    """An integer in [lo, hi]; `whole` is the full list value to quote when text is one item."""
    quoted, item = (text, "") if whole is None else (whole, f"{text!r} ")
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(param, quoted, f"{item}is not an integer") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ConfigError(param, quoted, f"{item}must be {bounds}".lstrip())
    return value


def parse_float(param: str, text, positive: bool = False, whole=None) -> float:
    quoted, item = (text, "") if whole is None else (whole, f"{text!r} ")
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ConfigError(param, quoted, f"{item}is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(param, quoted, f"{item}must be a finite number " + ("> 0" if positive else ">= 0"))
    return value


def _unique(param: str, text, values: list) -> tuple:
    if len(set(values)) != len(values):
        raise ConfigError(param, text, "values repeat")
    return tuple(values)


def int_list(param: str, lo: int, hi: int | None = None, empty_ok: bool = False):
    """A parser of a comma list of distinct integers in [lo, hi]; '' is () where empty_ok."""
    def parse(text) -> tuple[int, ...]:
        if empty_ok and str(text).strip() == "":
            return ()
        return _unique(param, text, [parse_int(param, t, lo=lo, hi=hi, whole=text) for t in _items(param, text)])
    return parse


def float_list(param: str, positive: bool = False):
    """A parser of a comma list of distinct finite numbers >= 0 (> 0 when positive)."""
    def parse(text) -> tuple[float, ...]:
        return _unique(param, text, [parse_float(param, t, positive, whole=text) for t in _items(param, text)])
    return parse


SEED_MAX = 2**63 - 1
parse_seeds = int_list("seeds", 0, SEED_MAX)
parse_lambdas = float_list("lambdas")
parse_classes = int_list("classes", 2, 10)


def parse_device(text) -> str:
    if text not in DEVICES:
        raise ConfigError("device", text, f"expected one of {', '.join(DEVICES)}")
    return text


def parse_bool(param: str, text) -> bool:
    low = str(text).strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise ConfigError(param, text, "expected true or false")


def parse_data_dir(text) -> str:
    """'' means $UNDERSPEC_DATA_DIR, else ./data (resolved when the data is loaded)."""
    text = str(text)
    if text != text.strip() or "\0" in text:
        raise ConfigError("data_dir", text, "not a usable path")
    return text


def parse_name(param: str, text, allow_empty: bool = False) -> str:
    """A sweep name: letters, digits, '.', '_' and '-', no path separators, at most 64 chars."""
    text = str(text)
    if text == "" and allow_empty:
        return text
    ok = text and len(text) <= 64 and all(c.isalnum() or c in "._-" for c in text) \
        and text.isascii() and text not in (".", "..") and not text.startswith(".")
    if not ok:
        raise ConfigError(param, text, "use 1-64 letters, digits, '.', '_' or '-', not starting with '.'")
    return text


def parse_storage(text) -> str:
    """An Optuna RDB URL without credentials; plain postgresql:// is pinned to psycopg 3."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = str(text)
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise ConfigError("storage", text, "not a database URL (e.g. sqlite:///optuna.db)") from None
    shown = url.render_as_string(hide_password=True)
    if url.password is not None:
        raise ConfigError("storage", shown, "holds a password; leave it out of the URL and pass it "
                          "through PGPASSWORD or ~/.pgpass (parameters are logged and printed)")
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database:
            raise ConfigError("storage", text, "an SQLite URL needs a file (sqlite:///optuna.db)")
        if not os.path.isdir(os.path.dirname(os.path.abspath(url.database))):
            raise ConfigError("storage", text, "the SQLite file's folder does not exist")
        return text
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if not url.host or not url.database:
            raise ConfigError("storage", text, "a PostgreSQL URL needs a host and a database")
        return url.render_as_string(hide_password=False)
    raise ConfigError("storage", shown, "use sqlite:///FILE or postgresql://USER@HOST/DB")


def parse_cells(text) -> str:
    """'auto', 'none', or 'lambda:C' pairs separated by commas (e.g. 0.001:9,0.0:10)."""
    text = str(text).strip()
    if text in ("auto", "none"):
        return text
    for item in _items("gif_cells", text):
        lam, _, c = item.partition(":")
        parse_float("gif_cells", lam, whole=text)
        parse_int("gif_cells", c, lo=2, hi=10, whole=text)
    return text


# The stress suite's families (training/shifts.py defines each; tests/test_shifts.py checks the two agree).
STRESS_FAMILIES = ("rotate", "translate", "scale", "shear", "gauss", "impulse", "blur", "contrast", "occlude",
                   "stripe")


def stress_families(text) -> tuple[str, ...] | None:
    """The `stress` parameter: 'all', 'none' (the suite off: None) or a comma list of families."""
    text = str(text).strip()
    if text == "all":
        return STRESS_FAMILIES
    if text in ("none", ""):
        return None
    picked = tuple(t.strip() for t in text.split(","))
    unknown = [t for t in picked if t not in STRESS_FAMILIES]
    if unknown:
        raise ConfigError("stress", text, f"unknown shift family {unknown[0]!r}; give all, none, or any of "
                          f"{', '.join(STRESS_FAMILIES)}")
    return picked


def parse_stress(text) -> str:
    stress_families(text)
    return str(text).strip()


def parse_out_dir(text) -> str:
    text = str(text)
    if not text.strip() or "\0" in text:
        raise ConfigError("out_dir", text, "must be a folder path")
    if os.path.exists(text) and not os.path.isdir(text):
        raise ConfigError("out_dir", text, "exists and is not a folder")
    return text
