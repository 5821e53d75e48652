"""One process of the concurrent-fetch test: underspec's real fetch (torchvision's download and
extraction, staging, verification, the rename into place) from a loopback mirror.
usage: python fetch_driver.py ROOT MIRROR_URL RESOURCES_JSON"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from torchvision.datasets import MNIST  # noqa: E402

from underspec.training.data import fetch_mnist  # noqa: E402

root, mirror, resources = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
MNIST.mirrors = [mirror]
MNIST.resources = [tuple(r) for r in resources]
fetch_mnist(root)
