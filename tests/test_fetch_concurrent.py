"""MNIST fetched by 8 processes at once into one folder (as workers on one volume or one shared
data folder do): every one succeeds, the folder ends verified and no staging folder is left. With
the lock, each file is downloaded once; without it (a file system that refuses locks, simulated
by a lock path that cannot be opened as a file), everything still holds. The source is a loopback
HTTP mirror of the real files, fetched by torchvision's own download code."""
import gzip
import hashlib
import http.server
import json
import sys
import threading
from pathlib import Path

import pytest

from underspec.training.data import MNIST_MD5, raw_dir, verify_md5

from helpers.paths import REPO

pytestmark = pytest.mark.slow
N = 8


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, mnist_root):
    """The real MNIST, gzipped, served on loopback; yields (url, resources, GET counter)."""
    folder = tmp_path_factory.mktemp("mirror")
    resources = []
    for name in MNIST_MD5:
        blob = gzip.compress((raw_dir(mnist_root) / name).read_bytes(), compresslevel=1, mtime=0)
        (folder / f"{name}.gz").write_bytes(blob)
        resources.append((f"{name}.gz", hashlib.md5(blob).hexdigest()))
    gets = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(folder), **kw)

        def do_GET(self):
            gets.append(self.path)
            super().do_GET()

        def log_message(self, *a):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # torchvision probes each URL and closes early: a broken pipe, not a failure

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", resources, gets
    server.shutdown()


def fetch_together(procs, root: Path, mirror) -> list:
    url, resources, _ = mirror
    cmd = [sys.executable, str(REPO / "tests" / "helpers" / "fetch_driver.py"), str(root), url, json.dumps(resources)]
    started = [procs.start(cmd, stdout=-1, stderr=-1, text=True) for _ in range(N)]
    return [(p, *p.communicate(timeout=600)) for p in started]


def check_fetched(root: Path, results) -> None:
    assert [p.returncode for p, _, _ in results] == [0] * N, [e[-2000:] for _, _, e in results]
    verify_md5(raw_dir(root))
    names = {p.name for p in raw_dir(root).iterdir()}  # torchvision keeps the .gz files it fetched
    assert set(MNIST_MD5) <= names and not [n for n in names if n.endswith(".part")], names
    assert [p.name for p in root.iterdir() if p.name.startswith(".mnist-staging-")] == []


def test_eight_processes_fetch_into_one_folder_with_the_lock_downloading_once(tmp_path, procs, mirror):
    root = tmp_path / "data"
    (raw_dir(root)).mkdir(parents=True)  # a partial folder an older fetch left: replaced, not used
    (raw_dir(root) / "train-images-idx3-ubyte.part").write_bytes(b"half")
    (raw_dir(root) / "t10k-labels-idx1-ubyte").write_bytes(b"truncated")
    mirror[2].clear()
    results = fetch_together(procs, root, mirror)
    check_fetched(root, results)
    fetched = [out for _, out, _ in results if "fetching MNIST via torchvision" in out]
    assert len(fetched) == 1, [out for _, out, _ in results]  # one download; the others waited
    assert {g for g in mirror[2]} == {f"/{r[0]}" for r in mirror[1]}


def test_without_a_lock_they_race_and_all_still_succeed(tmp_path, procs, mirror):
    root = tmp_path / "data"
    (root / ".mnist.lock").mkdir(parents=True)  # cannot be opened as a file: no lock for anyone
    mirror[2].clear()
    results = fetch_together(procs, root, mirror)
    check_fetched(root, results)
    assert all("MNIST verified" in out for _, out, _ in results)
