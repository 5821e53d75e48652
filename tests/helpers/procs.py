"""Processes and waits for tests: every process a test starts gets a session (process group) of
its own, and the `procs` fixture kills each whole group when the test ends, passed or failed, so
nothing a test started (a sweep, its engine workers, a forkserver, a server) outlives it and
loads or writes into the next one. Waits are on conditions, with generous deadlines."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

# Deadlines are for a loaded 2-core machine: an outcome that needs 5 s when quiet gets minutes.
DEADLINE_S = 600.0


class Procs:
    """Start processes in new sessions; reap() SIGKILLs every group and waits for the leaders."""

    def __init__(self) -> None:
        self._started: list[subprocess.Popen] = []

    def start(self, cmd: list[str], **kw) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, start_new_session=True, **kw)
        self._started.append(proc)
        return proc

    def run(self, cmd: list[str], timeout: float = DEADLINE_S, **kw) -> subprocess.CompletedProcess:
        """Like subprocess.run(capture_output=True, text=True), but a timeout kills the whole group
        (subprocess.run kills the leader only, leaving its workers to run on)."""
        proc = self.start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            raise AssertionError(f"{cmd[:3]}... still running after {timeout:.0f} s:\n{err[-3000:]}") from None
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def reap(self) -> None:
        for proc in self._started:
            kill_group(proc)
        for proc in self._started:
            try:
                proc.communicate(timeout=60)
            except (subprocess.TimeoutExpired, ValueError, OSError):
                proc.wait(timeout=60)


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal every process of proc's group (its leader may have exited, its workers not)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until(pred: Callable[[], object], what: str, timeout: float = DEADLINE_S, poll: float = 0.2,
               alive: subprocess.Popen | None = None):
    """Poll pred until it returns something truthy (returned); raise AssertionError naming `what`
    after `timeout`, or as soon as the process `alive` has exited without pred holding."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"waiting for {what}: the process exited with {alive.returncode} first")
        if time.monotonic() > deadline:
            raise AssertionError(f"waiting for {what}: not reached in {timeout:.0f} s")
        time.sleep(poll)
