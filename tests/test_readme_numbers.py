"""The README's result numbers are what docs/readme_numbers.py prints from the committed reports."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from helpers.paths import REPO

SCRIPT = REPO / "docs" / "readme_numbers.py"
README = REPO / "README.md"


@pytest.fixture(scope="module")
def rn():
    spec = importlib.util.spec_from_file_location("readme_numbers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered(rn):
    return rn.render(REPO / "reports")


def test_every_block_is_what_the_script_prints(rn, rendered):
    found = rn.found(README.read_text())
    for name, body in rendered.items():
        assert found[name] == [f"\n{body}\n"], f"block {name!r} is stale: python docs/readme_numbers.py --write"
    assert rn.check(README, REPO / "reports") is None


def test_every_known_block_appears_once(rn, rendered):
    text = README.read_text()
    for name in rendered:
        assert text.count(rn.MARK.format(name=name)) == 1, name
        assert text.count(rn.END.format(name=name)) == 1, name
    assert set(rn.found(text)) == set(rendered)


def test_one_changed_number_fails_the_check(rn, rendered, tmp_path):
    text = README.read_text()
    for name, body in rendered.items():
        digit = re.search(r"\d", body)
        assert digit, f"block {name!r} holds no number"
        i = digit.start()
        changed = body[:i] + str((int(body[i]) + 1) % 10) + body[i + 1:]
        copy = tmp_path / f"{name}.md"
        copy.write_text(text.replace(rn.wrap(name, body), rn.wrap(name, changed), 1))
        problem = rn.check(copy, REPO / "reports")
        assert problem is not None and repr(name) in problem, name


def test_the_command_line_check_and_write(tmp_path):
    copy = tmp_path / "README.md"
    copy.write_text(README.read_text().replace("| identity | 0.", "| identity | 9.", 1))
    run = [sys.executable, str(SCRIPT), "--readme", str(copy)]
    bad = subprocess.run([*run, "--check"], capture_output=True, text=True)
    assert bad.returncode == 1 and "'barrier-table'" in bad.stderr, bad.stderr
    assert subprocess.run([*run, "--write"]).returncode == 0
    assert copy.read_text() == README.read_text()
    assert subprocess.run([*run, "--check"]).returncode == 0
