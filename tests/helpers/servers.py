"""Real servers for the scale-out tests: a PostgreSQL cluster (Debian's package, initdb in a temp
folder, a free loopback port) and an `mlflow server` with a PostgreSQL backend and proxied
artifacts. Each is started by a test, on 127.0.0.1 only, and stopped by it."""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from helpers.procs import DEADLINE_S, kill_group, wait_until

PG_PASSWORD = "s3cret-for-tests-only"  # reaches processes through PGPASSWORD, never a URL


def ephemeral_ports() -> range:
    """The ports the kernel hands to outgoing connections (and to bind(port=0))."""
    try:
        lo, hi = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    return range(lo, hi + 1)


_CALLS = itertools.count()


def free_port() -> int:
    """A free loopback port outside the ephemeral range. A server restarted on its port (the
    outage tests) must find it free: an ephemeral port can be taken meanwhile by any outgoing
    connection on the machine, even by the client retrying against it (a TCP self-connect)."""
    ephemeral = ephemeral_ports()
    start = 20000 + (os.getpid() * 10 + next(_CALLS)) % 7000  # side-by-side sessions and calls start apart
    for port in [*range(start, 27000), *range(20000, start), *range(1024, 20000)]:
        if port in ephemeral:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port outside the ephemeral range")


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    return Path(exe).resolve().parent if exe else None


def _as_postgres(cmd: list[str], **kw):
    """initdb and the server refuse to run as root: run them as Debian's `postgres` user."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


@contextmanager
def postgres(databases=("optuna", "mlflow")):
    """A PostgreSQL cluster on 127.0.0.1 with password (scram) auth; yields (port, env).
    Its folder is its own (the `postgres` user cannot enter pytest's private tmp folders)."""
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    # Not under the test's private temp folder: pytest keeps that 0700, closed to `postgres`. A
    # folder of its own (and a short path for the socket), removed when the cluster stops.
    tmp = Path(tempfile.mkdtemp(prefix="underspec-pg-", dir="/tmp"))
    data, pwfile = tmp / "pgdata", tmp / "pwfile"
    pwfile.write_text(PG_PASSWORD)
    if os.geteuid() == 0:
        uid = pwd.getpwnam("postgres").pw_uid
        os.chown(tmp, uid, -1)
        os.chown(pwfile, uid, -1)
    _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "underspec", "-A", "scram-sha-256",
                  f"--pwfile={pwfile}", "--no-sync"])
    port = free_port()
    opts = f"-h 127.0.0.1 -p {port} -k {tmp} -c fsync=off -c max_connections=100"
    _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(tmp / "pg.log"), "-w", "start"])
    env = {**os.environ, "PGPASSWORD": PG_PASSWORD, "PGHOST": "127.0.0.1", "PGPORT": str(port),
           "PGUSER": "underspec"}
    try:
        for db in databases:
            subprocess.run([str(bindir / "createdb"), db], env=env, check=True, capture_output=True)
        yield port, env
    finally:
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(tmp, ignore_errors=True)


class MlflowServer:
    """`mlflow server` on a fixed loopback port, which can be stopped and started again (an
    outage) over the same stores."""

    def __init__(self, tmp: Path, backend: str, env: dict):
        self.tmp, self.backend, self.env, self.port = tmp, backend, env, free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc = None
        tmp.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = DEADLINE_S) -> None:
        cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", self.backend,
               "--artifacts-destination", str(self.tmp / "artifacts"), "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", "2",
               "--allowed-hosts", f"127.0.0.1:{self.port},localhost:{self.port}"]
        log = open(self.tmp / "mlflow-server.log", "a")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while not self.healthy():
            if self.proc.poll() is not None or time.time() > deadline:
                log_tail = (self.tmp / "mlflow-server.log").read_text()[-3000:]
                raise RuntimeError("mlflow server did not start:\n" + log_tail)
            time.sleep(0.3)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """SIGKILL the whole server (gunicorn/uvicorn and its workers): it goes away mid-request.
        Returns once every process of its group is gone, so a restart finds the port free."""
        if self.proc is None:
            return
        kill_group(self.proc)
        self.proc.wait(timeout=DEADLINE_S)
        wait_until(lambda: not group_alive(self.proc.pid), "the mlflow server's processes to exit")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def mlflow_server(tmp: Path, pg_port: int | None, env: dict):
    """`mlflow server`: PostgreSQL backend store (SQLite in tmp without pg_port), proxied artifacts
    in tmp; yields its URI."""
    backend = f"postgresql+psycopg://underspec@127.0.0.1:{pg_port}/mlflow" if pg_port else \
        f"sqlite:///{tmp / 'server.db'}"
    server = MlflowServer(tmp, backend, env)
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()
