"""A folder built by several processes at once, safely, also on a network file system: each
builds it in a temporary folder of its own beside the target, verifies it, and renames it into
place (rename is atomic there too, where locks may not be). A lock only spares duplicate work:
where the file system refuses it, everything still holds, at the cost of a second download.
No torch, MLflow or Optuna."""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def best_effort_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive flock on path while the block runs; yields False (and runs the block
    anyway) where the file system cannot lock or the file cannot be created (a read-only mount)."""
    try:
        fh = open(path, "a+")
    except OSError:
        yield False
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def staging_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A fresh folder of this process's own inside parent (same file system as the target, so
    the final rename is atomic), removed with whatever is left in it."""
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def install_dir(src: Path, dest: Path, good: Callable[[Path], bool], tries: int = 5) -> bool:
    """Rename the verified folder src to dest atomically. A dest that is already good (another
    process was first) is kept and src left to be removed: returns False. A bad dest (a partial
    folder from an older version, a damaged copy) is moved aside first, then removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(tries):
        try:
            os.rename(src, dest)  # onto a missing or empty folder only: never a half-replaced one
            return True
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if good(dest):
            return False
        aside = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(dest, aside)
        except FileNotFoundError:  # another process moved it aside first
            continue
        shutil.rmtree(aside, ignore_errors=True)
    raise OSError(errno.EBUSY, f"could not install {dest}: replaced by other processes {tries} times")
