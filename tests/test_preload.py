"""Every module the forkserver preloads imports: the server skips a bad name without a word, and
each worker then pays seconds to import it itself."""
import importlib
import subprocess
import sys

import pytest

from underspec.training.parallel import PRELOAD

from helpers.paths import REPO


def test_the_preload_list_names_the_modules_workers_use():
    assert "__main__" in PRELOAD and "underspec.training.engine" in PRELOAD


@pytest.mark.parametrize("name", [n for n in PRELOAD if n != "__main__"])
def test_every_preloaded_name_imports(name):
    """In a fresh interpreter, as the forkserver imports it (this process may have it already)."""
    res = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); "
                          f"import importlib; importlib.import_module({name!r})"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"PRELOAD name {name!r} does not import: {res.stderr.strip()[-500:]}"
    assert importlib.util.find_spec(name) is not None
