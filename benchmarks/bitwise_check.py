"""Is training bitwise what it was? Train named configurations with this tree's code and with a
given git commit's, on real MNIST, and compare every array they produce with np.array_equal.

The configurations cover the grid axes: several seeds x lambdas x C, an init/order seed split, a
jitter, a second width, another lr and batch size; each trains for a few epochs (--epochs). The
commit is checked out into a temporary `git worktree`; each side trains in its own subprocess with
its tree first on sys.path, so the two never share a module. The commit's layout may be the flat
one (`underspec.engine`, `underspec.data`) or the layered one (`underspec.training.engine`,
`underspec.training.data`).

Prints one line per configuration (`same` or `DIFFERENT`, with the first arrays that differ) and
exits 1 on any difference, 0 when every array is identical.

    .venv/bin/python benchmarks/bitwise_check.py --commit 13d1eb4
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

# name -> the RunSpec keyword arguments of its runs (trained together, fused per minibatch stream).
CONFIGS: dict[str, list[dict]] = {
    "seeds x lambdas x C": [dict(seed=s, lam=lam, classes=c) for s in (0, 42) for lam in (0.0, 0.001, 0.05)
                            for c in (2, 10)],
    "init/order split": [dict(seed=3, lam=0.001, classes=10, order_seed=5),
                         dict(seed=5, lam=0.001, classes=10, order_seed=3),
                         dict(seed=3, lam=0.0025, classes=4, order_seed=5)],
    "jitter": [dict(seed=0, lam=0.001, classes=10, jitter=j) for j in (0, 1, 2)],
    "width 32": [dict(seed=0, lam=0.001, classes=10, hidden=32), dict(seed=42, lam=0.005, classes=7, hidden=32)],
    "lr 0.05, batch 128": [dict(seed=1337, lam=0.001, classes=9, lr=0.05, batch_size=128)],
}


def _import(layered: str, flat: str):
    """The tree's module: `layered` when the tree (sys.path[0]) has the layered layout, else `flat`.
    Decided by the tree's files, and checked: an installed underspec elsewhere would fill a gap."""
    tree = Path(sys.path[0]).resolve()
    name = layered if (tree / "underspec" / "training").is_dir() else flat
    module = importlib.import_module(name)
    if not Path(module.__file__).resolve().is_relative_to(tree):
        raise RuntimeError(f"{name} came from {module.__file__}, not from {tree}")
    return module


def train_all(data_dir: str, epochs: int, probe: int) -> dict[str, np.ndarray]:
    """Every configuration's arrays, keyed `config|run index|trajectory/embeddings/metrics|name`."""
    engine = _import("underspec.training.engine", "underspec.engine")
    data = _import("underspec.training.data", "underspec.data").load_mnist(data_dir)
    s = engine.EngineSettings(epochs=epochs, probe_size=probe, device="cpu")
    out = {}
    for name, runs in CONFIGS.items():
        results = engine.train_many([engine.RunSpec(**kw) for kw in runs], data, s)
        for i, r in enumerate(results):
            for part in ("trajectory", "embeddings", "metrics"):
                out.update({f"{name}|{i}|{part}|{k}": v for k, v in getattr(r, part).items()})
    return out


def worker(args) -> int:
    """In a subprocess whose sys.path starts with the tree to test: train and save the arrays."""
    arrays = train_all(args.data_dir, args.epochs, args.probe)
    np.savez(args.out, **arrays)
    return 0


def start(tree: Path, out: Path, args) -> subprocess.Popen:
    """Train in a subprocess with `tree` first on sys.path (and as its working folder)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            f"sys.path.insert(1, {str(Path(__file__).parent)!r}); import bitwise_check as b; "
            "sys.exit(b.main(sys.argv[2:]))")
    cmd = [sys.executable, "-c", code, str(tree), "--worker", "--out", str(out), "--data-dir", args.data_dir,
           "--epochs", str(args.epochs), "--probe", str(args.probe)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.Popen(cmd, cwd=tree, env=env)


def compare(new: dict, old: dict) -> int:
    """Print one line per configuration; the number of configurations that differ."""
    bad = 0
    for name, runs in CONFIGS.items():
        keys = sorted(k for k in new.keys() | old.keys() if k.split("|")[0] == name)
        diff = [k for k in keys if k not in new or k not in old or not np.array_equal(new[k], old[k])]
        n_traj = sum(1 for k in keys if k.split("|")[2] == "trajectory")
        if diff:
            bad += 1
            shown = ", ".join("|".join(k.split("|")[1:]) for k in diff[:4]) + (", ..." if len(diff) > 4 else "")
            print(f"DIFFERENT  {name}: {len(diff)} of {len(keys)} arrays differ ({shown})")
        else:
            print(f"same       {name}: {len(runs)} runs, {len(keys)} arrays identical ({n_traj} trajectory)")
    return bad


def check(args) -> int:
    """Check the commit out, train both sides (in parallel, one thread each), compare."""
    with tempfile.TemporaryDirectory(prefix="bitwise-check-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(tree), args.commit],
                       check=True)
        try:
            sides = {"current": REPO, args.commit: tree}
            procs = {side: start(root, Path(tmp) / f"{i}.npz", args) for i, (side, root) in enumerate(sides.items())}
            codes = {side: p.wait() for side, p in procs.items()}
            if any(codes.values()):
                print(f"training failed: exit codes {codes}", file=sys.stderr)
                return 2
            new, old = (dict(np.load(Path(tmp) / f"{i}.npz", allow_pickle=False)) for i in range(2))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    bad = compare(new, old)
    print(f"{'all configurations bitwise identical' if not bad else f'{bad} configuration(s) differ'}: "
          f"current tree vs {args.commit}, {args.epochs} epochs")
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Exit 1 on any difference.",
                                 epilog=f"configurations: {'; '.join(CONFIGS)}")
    ap.add_argument("--commit", default="HEAD", help="the git commit to compare with (default: HEAD)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run (default: 3)")
    ap.add_argument("--probe", type=int, default=200, help="probe images whose embeddings are compared")
    ap.add_argument("--data-dir", default=os.environ.get("UNDERSPEC_DATA_DIR") or str(REPO / "data"),
                    help="MNIST root (default: $UNDERSPEC_DATA_DIR or ./data)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.data_dir = str(Path(args.data_dir).resolve())
    return worker(args) if args.worker else check(args)


if __name__ == "__main__":
    sys.exit(main())
