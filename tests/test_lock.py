"""The locks that scripts/setup installs agree with pyproject.toml: every dependency (and
the build backend) is pinned there, within what pyproject.toml allows, with hashes. A
dependency changed in pyproject.toml without `scripts/lock` fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins(lock: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of each package in a lock file."""
    text = (ROOT / lock).read_text()
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        if m:
            out[canonicalize_name(m.group(1))] = (m.group(2), block.count("--hash=sha256:"))
    return out


@pytest.mark.parametrize(
    "lock, extras",
    [("requirements.lock", []), ("requirements-test.lock", ["test"])],
)
def test_the_lock_pins_every_dependency_within_pyproject(lock, extras):
    locked = pins(lock)
    wanted = [*PROJECT["project"]["dependencies"], *PROJECT["build-system"]["requires"]]
    for extra in extras:
        wanted += PROJECT["project"]["optional-dependencies"][extra]
    problems = []
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name not in locked:
            problems.append(f"{req.name} is not in {lock}")
        elif not req.specifier.contains(locked[name][0], prereleases=True):
            problems.append(f"{lock} has {req.name}=={locked[name][0]}, pyproject wants {text}")
    assert problems == [], "run scripts/lock:\n" + "\n".join(problems)
    assert all(hashes for _, hashes in locked.values())


def test_setup_says_what_it_is_doing_while_it_installs(tmp_path):
    """``./run`` starts with scripts/setup; on a first run it installs for about a minute,
    and says so. Here on a copy with a one-package lock (the build backend), then again:
    a second run changes nothing and prints nothing."""
    import re
    import shutil
    import subprocess
    import sys

    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup", tmp_path / "scripts" / "setup")
    lock = (ROOT / "requirements-test.lock").read_text()
    (entry,) = re.findall(r"^setuptools==.*?(?=^\S)", lock, re.M | re.S)
    (tmp_path / "requirements-test.lock").write_text(entry)
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "lifecycle"\nversion = "0"\n[tool.setuptools]\npy-modules = []\n'
    )
    base = getattr(sys, "_base_executable", sys.executable)
    env = {"PATH": "/usr/bin:/bin", "PYTHON": base, "HOME": str(tmp_path)}

    def setup() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "scripts/setup"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    first = setup()
    assert first.returncode == 0, first.stderr
    lines = first.stderr.splitlines()
    assert lines[0].startswith("setup: creating .venv with Python 3.")
    assert lines[1] == (
        "setup: installing dependencies (first run, ~1 min): 1 packages from"
        " requirements-test.lock into .venv ..."
    )
    assert lines[2] == "setup: installing lifecycle itself (editable) ..."
    assert re.fullmatch(r"setup: done in \d+ s", lines[3])
    again = setup()
    assert again.returncode == 0 and again.stderr == "" and again.stdout == ""
