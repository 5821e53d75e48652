"""The stress suite: named, versioned, shifted copies of the MNIST test images (after MNIST-C,
built here from the test set alone), deterministic to the byte on one CPU (the bilinear rotations
round differently on Intel and AMD CPUs: tests/test_shifts.py pins both), cached under the data
folder.

Every shift maps (N, 28, 28) uint8 images to (N, 28, 28) uint8 images. The geometric, blur,
contrast and occlusion families use torchvision.transforms.v2.functional; the noise and stripe
families use numpy. Random choices (a rotation's sign, a patch's centre, the noise) come from a
numpy Generator seeded by the suite version and the family's name, drawn once per family and
shared by its severities (a more severe shift is the same corruption, stronger: the mean L2
distance to the clean image grows with severity). torch runs on one thread while a shift is made.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from underspec.training.data import dataset_digest

SUITE = "mnist-stress"
VERSION = 1
IDENTITY = "identity"
SIDE = 28


@dataclass(frozen=True)
class Shift:
    """One shifted set: its family, its severity (1 = mildest) and the family's parameter at that
    severity, in the unit its name spells (`rotate-40deg`: 40 degrees)."""

    family: str
    severity: int
    value: int
    unit: str

    @property
    def name(self) -> str:
        return IDENTITY if self.family == IDENTITY else f"{self.family}-{self.value}{self.unit}"


# family: (unit, values by severity, what the value means)
FAMILIES: dict[str, tuple[str, tuple[int, ...], str]] = {
    "rotate": ("deg", (20, 40), "rotation by +-value degrees about the centre (sign per image), bilinear"),
    "translate": ("px", (2, 4), "shift by value pixels up, down, left or right (direction per image)"),
    "scale": ("pct", (80, 60), "zoom out to value percent about the centre, bilinear"),
    "shear": ("deg", (20, 40), "horizontal shear by +-value degrees (sign per image), bilinear"),
    "gauss": ("sd", (40, 80), "additive Gaussian noise, standard deviation value on the 0..255 scale"),
    "impulse": ("pct", (5, 15), "salt-and-pepper noise on value percent of the pixels"),
    "blur": ("px", (1, 2), "Gaussian blur, sigma value pixels (kernel 2 * ceil(3 sigma) + 1)"),
    "contrast": ("pct", (40, 20), "contrast scaled to value percent (torchvision adjust_contrast)"),
    "occlude": ("px", (8, 12), "a black value x value square at a per-image centre near the middle"),
    "stripe": ("px", (2, 4), "a white stripe value pixels wide, row or column per image, near the middle"),
}


def all_shifts(families=None) -> list[Shift]:
    """The identity, then each family's severities, in FAMILIES' order; `families` picks a subset."""
    chosen = FAMILIES if families is None else [f for f in FAMILIES if f in families]
    return [Shift(IDENTITY, 0, 0, "")] + [Shift(f, i + 1, v, FAMILIES[f][0])
                                          for f in chosen for i, v in enumerate(FAMILIES[f][1])]


def family_rng(family: str) -> np.random.Generator:
    """The family's own generator: seeded by the suite version and the family's name only."""
    return np.random.default_rng([VERSION, int.from_bytes(hashlib.sha256(family.encode()).digest()[:8], "big")])


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread (its kernels' results then do not depend on the machine's cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _by_choice(x: torch.Tensor, choice: np.ndarray, ops: list[Callable]) -> torch.Tensor:
    """Apply ops[c] to the images whose choice is c; x (N, 1, 28, 28)."""
    out = torch.empty_like(x)
    for c, op in enumerate(ops):
        idx = torch.from_numpy(np.flatnonzero(choice == c))
        if len(idx):
            out[idx] = op(x[idx])
    return out


def _rotate(x, v, rng):
    sign = rng.integers(0, 2, len(x))
    return _by_choice(x, sign, [lambda t, a=a: F.rotate(t, a, interpolation=InterpolationMode.BILINEAR)
                                for a in (float(v), -float(v))])


def _translate(x, v, rng):
    moves = [[v, 0], [-v, 0], [0, v], [0, -v]]
    return _by_choice(x, rng.integers(0, 4, len(x)), [
        lambda t, m=m: F.affine(t, angle=0.0, translate=m, scale=1.0, shear=[0.0, 0.0]) for m in moves])


def _scale(x, v, rng):
    return F.affine(x, angle=0.0, translate=[0, 0], scale=v / 100, shear=[0.0, 0.0],
                    interpolation=InterpolationMode.BILINEAR)


def _shear(x, v, rng):
    return _by_choice(x, rng.integers(0, 2, len(x)), [
        lambda t, s=s: F.affine(t, angle=0.0, translate=[0, 0], scale=1.0, shear=[s, 0.0],
                                interpolation=InterpolationMode.BILINEAR) for s in (float(v), -float(v))])


def _gauss(x, v, rng):
    z = rng.standard_normal(x.shape)
    return torch.from_numpy(np.clip(np.rint(x.numpy() + v * z), 0, 255).astype(np.uint8))


def _impulse(x, v, rng):
    u, salt = rng.random(x.shape), rng.random(x.shape) < 0.5
    hit = u < v / 100  # nested: the pixels hit at a lower rate are hit at a higher one
    return torch.from_numpy(np.where(hit, np.where(salt, 255, 0), x.numpy()).astype(np.uint8))


def _blur(x, v, rng):
    k = 2 * int(np.ceil(3 * v)) + 1
    return F.gaussian_blur(x, [k, k], [float(v), float(v)])


def _contrast(x, v, rng):
    return F.adjust_contrast(x, v / 100)


def _centres(rng, n) -> np.ndarray:
    return rng.integers(10, 19, (n, 2))  # (n, 2) row, column: in the middle, where the strokes are


def _occlude(x, v, rng):
    out = x.clone()
    zero = torch.zeros((), dtype=torch.uint8)
    for i, (r, c) in enumerate(_centres(rng, len(x))):
        top, left = max(r - v // 2, 0), max(c - v // 2, 0)
        out[i] = F.erase(x[i], top, left, min(v, SIDE - top), min(v, SIDE - left), zero)
    return out


def _stripe(x, v, rng):
    centres, column = _centres(rng, len(x)), rng.integers(0, 2, len(x)).astype(bool)[:, None, None]
    lo = centres[:, :1] - v // 2  # (n, 1)
    band = (np.arange(SIDE) >= lo) & (np.arange(SIDE) < lo + v)  # (n, 28): the stripe's rows or columns
    mask = (band[:, :, None] & ~column) | (band[:, None, :] & column)  # (n, 28, 28)
    return torch.from_numpy(np.where(mask, 255, x.numpy()[:, 0]).astype(np.uint8)[:, None])


OPS = {"rotate": _rotate, "translate": _translate, "scale": _scale, "shear": _shear, "gauss": _gauss,
       "impulse": _impulse, "blur": _blur, "contrast": _contrast, "occlude": _occlude, "stripe": _stripe}


def make_shift(images: np.ndarray, shift: Shift) -> np.ndarray:
    """images (N, 28, 28) uint8 -> the shifted copy (N, 28, 28) uint8; the identity is a copy."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"make_shift needs (N, 28, 28) uint8 images, got {images.shape} {images.dtype}")
    if shift.family == IDENTITY:
        return images.copy()
    with one_thread():
        x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28)
        out = OPS[shift.family](x, shift.value, family_rng(shift.family))
    return np.ascontiguousarray(out.reshape(images.shape).numpy(), dtype=np.uint8)


def digest(images: np.ndarray) -> str:
    """A shifted set's identity: the first 32 hex characters of sha256 over shape, dtype and bytes."""
    a = np.ascontiguousarray(images)
    return hashlib.sha256(f"{a.shape}{a.dtype}".encode() + a.tobytes()).hexdigest()[:32]


def params_digest() -> str:
    """What the cache is keyed by besides the version and the MNIST files: every family's parameters."""
    return hashlib.sha256(json.dumps([SUITE, VERSION, FAMILIES], sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class Suite:
    """The loaded suite: {shift name: (N, 28, 28) uint8}, a digest per set, where it is cached."""

    shifts: list[Shift]
    images: dict[str, np.ndarray] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    folder: Path | None = None

    @property
    def key(self) -> str:
        return self.folder.name if self.folder else f"{SUITE}-v{VERSION}"


def cache_folder(root: Path | str) -> Path:
    """root/stress/<suite>-v<version>-<MNIST files digest>-<parameters digest>."""
    return Path(root) / "stress" / f"{SUITE}-v{VERSION}-{dataset_digest(root)[:12]}-{params_digest()}"


def load_suite(root: Path | str, test_images: np.ndarray, families=None) -> Suite:
    """The suite for the MNIST under root (test_images: its (N, 28, 28) uint8 test set), read
    from the cache where a set is there, else made and cached (atomically: temp file, then
    os.replace, so a reader never meets half a file)."""
    folder = cache_folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    suite = Suite(all_shifts(families), folder=folder)
    for shift in suite.shifts:
        path = folder / f"{shift.name}.npy"
        arr = _read(path, test_images.shape)
        if arr is None:
            arr = make_shift(test_images, shift)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            os.replace(tmp, path)
        suite.images[shift.name], suite.digests[shift.name] = arr, digest(arr)
    return suite


def _read(path: Path, shape) -> np.ndarray | None:
    """A cached set, or None when absent or not what it should be (then it is made again)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return arr if arr.dtype == np.uint8 and arr.shape == tuple(shape) else None
