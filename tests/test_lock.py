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
